// One conversation's socket, /ws/chat/{session} ("new" for a new one): frames in
// (nexflow/web/frames.py ServerFrame), messages, acks, resume and stop out. Replies are
// acknowledged with their outbox id as soon as they arrive, like the classic page.
// Reconnects after a drop; 4403/4404 (not yours, gone) are final.
import { token } from "../../api/client";
import type { Outbound } from "./api";

export type ServerFrame =
  | { type: "auth_ok" }
  | { type: "session"; id: string }
  | { type: "accepted"; message_id: number }
  | { type: "token"; text: string }
  | { type: "tool_call"; name: string; arguments: string; label?: string }
  | { type: "tool_result"; name: string; ok: boolean; content: string }
  | ({ type: "reply"; outbox_id?: number | null; reply_to?: string | null } & Outbound)
  | { type: "stopped"; message_id: number | null }
  | { type: "error"; code?: string; message: string };

export interface SocketHandlers {
  frame: (frame: ServerFrame) => void;
  open: () => void;
  closed: (final: boolean) => void;
}

const RETRY_MS = 1500;

export class ChatSocket {
  private ws: WebSocket | null = null;
  private closedByUs = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private session: string,
    private readonly handlers: SocketHandlers,
  ) {}

  get sessionId(): string {
    return this.session;
  }

  open(): void {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/chat/${encodeURIComponent(this.session)}`);
    this.ws = ws;
    ws.onopen = () => {
      const bearer = token();
      if (bearer) ws.send(JSON.stringify({ type: "auth", token: bearer }));
      this.handlers.open();
    };
    ws.onmessage = (e) => {
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(e.data)) as ServerFrame;
      } catch {
        return;
      }
      if (frame.type === "session") this.session = frame.id;
      if (frame.type === "reply" && frame.outbox_id != null) {
        ws.send(JSON.stringify({ type: "ack", outbox_id: frame.outbox_id }));
      }
      this.handlers.frame(frame);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      const final = this.closedByUs || e.code === 4403 || e.code === 4404 || e.code === 4401;
      this.handlers.closed(final);
      if (!final) this.timer = setTimeout(() => this.open(), RETRY_MS);
    };
  }

  get ready(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(frame: Record<string, unknown>): boolean {
    if (!this.ready) return false;
    this.ws!.send(JSON.stringify(frame));
    return true;
  }

  close(): void {
    this.closedByUs = true;
    clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
  }
}
