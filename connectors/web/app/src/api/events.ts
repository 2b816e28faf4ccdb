// The one live connection of the app: /ws/events, shared by every listener.
// Frames mirror nexflow/web/events.py (EventFrame). The socket opens with the first
// subscriber, authenticates with {"type":"auth","token"} when a token is stored,
// reconnects with exponential backoff, and tells listeners when it (re)connects with a
// synthetic {"type":"connection"} frame so views can re-read what they may have missed.
import { token } from "./client";
import type { PanelSummary, RenderTree } from "./panels";
import type { Json } from "./types";

// PanelSummary (the REST model, also sent in panel.created) comes from the OpenAPI schema.
export type { Json, PanelSummary };

export type EventFrame =
  | {
      type: "panel.updated";
      panel_id: string;
      version: number;
      state: Record<string, Json>;
      render: RenderTree;
      binding_errors: string[];
    }
  | { type: "panel.created"; panel: PanelSummary }
  | { type: "panel.deleted"; panel_id: string; workspace: string }
  | { type: "toast"; panel_id: string; message: string }
  | {
      type: "patch";
      event: "proposed" | "merged" | "conflict" | "rejected";
      patch: { id: string; status: string; target: string; summary: string; [key: string]: Json };
    }
  | { type: "file.committed"; workspace: string; path: string; sha: string }
  | { type: "layout.updated"; workspace: string }
  | { type: "pong" }
  | { type: "auth_ok" }
  | { type: "error"; code: string; message: string }
  | { type: "connection"; state: ConnectionState };

export type ConnectionState = "connecting" | "open" | "closed";
export type Listener = (frame: EventFrame) => void;

const listeners = new Set<Listener>();
let socket: WebSocket | null = null;
let state: ConnectionState = "closed";
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let pingTimer: ReturnType<typeof setInterval> | undefined;
const PING_MS = 25_000;
const MAX_BACKOFF_MS = 15_000;

function emit(frame: EventFrame): void {
  for (const listener of [...listeners]) {
    try {
      listener(frame);
    } catch (err) {
      console.error("event listener failed", err);
    }
  }
}

function setState(next: ConnectionState): void {
  if (state === next) return;
  state = next;
  emit({ type: "connection", state: next });
}

function url(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/events`;
}

function connect(): void {
  if (socket || listeners.size === 0) return;
  setState("connecting");
  const ws = new WebSocket(url());
  socket = ws;
  ws.onopen = () => {
    const bearer = token();
    if (bearer) ws.send(JSON.stringify({ type: "auth", token: bearer }));
    attempt = 0;
    setState("open");
    clearInterval(pingTimer);
    pingTimer = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
    }, PING_MS);
  };
  ws.onmessage = (ev: MessageEvent<string>) => {
    let frame: EventFrame;
    try {
      frame = JSON.parse(ev.data) as EventFrame;
    } catch {
      return;
    }
    emit(frame);
  };
  ws.onclose = () => {
    if (socket !== ws) return; // closed on purpose (nobody listens any more)
    clearInterval(pingTimer);
    socket = null;
    setState("closed");
    scheduleReconnect();
  };
}

function scheduleReconnect(): void {
  if (listeners.size === 0) return;
  clearTimeout(retryTimer);
  const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
  attempt += 1;
  retryTimer = setTimeout(connect, delay);
}

/** Listen to every frame; returns the function that stops listening. */
export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  connect();
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) {
      clearTimeout(retryTimer);
      const ws = socket;
      socket = null;
      clearInterval(pingTimer);
      state = "closed";
      ws?.close();
    }
  };
}

export function connectionState(): ConnectionState {
  return state;
}
