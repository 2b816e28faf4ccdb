// A conversation's state: its timeline (read from the gateway, then live from the socket),
// whether a turn runs (Stop is shown then), and the actions Send / Stop.
//
// Frames that arrive while the timeline loads wait in a backlog; replies already in the
// timeline (same outbox id) are not drawn twice. Tokens stream into an assistant bubble
// that the turn's final text reply replaces; a tool call ends the bubble (the next tokens
// start a new one).
import { useCallback, useEffect, useRef, useState } from "react";
import { getSession, stopSession, type Outbound, type TimelineItem } from "./api";
import { ChatSocket, type ServerFrame } from "./socket";
import { setLocale, type Locale } from "../../i18n";

export type Entry =
  | { key: string; kind: "user"; text: string; pending?: boolean }
  | { key: string; kind: "assistant"; text: string; streaming?: boolean }
  | { key: string; kind: "tool_call"; name: string; arguments: string; label?: string }
  | { key: string; kind: "tool_result"; name: string; ok: boolean; content: string }
  | {
      key: string;
      kind: "card";
      outbound: Outbound;
      status?: string;
      reason?: string;
      merge_commit?: string;
    }
  | { key: string; kind: "error"; text: string }
  | { key: string; kind: "stopped" };

export type Connection = "connecting" | "open" | "closed";

let counter = 0;
const nextKey = () => `e${++counter}`;

function fromTimeline(item: TimelineItem): Entry {
  switch (item.kind) {
    case "user":
      return { key: nextKey(), kind: "user", text: item.text, pending: item.pending };
    case "assistant":
      return { key: nextKey(), kind: "assistant", text: item.text };
    case "tool_call":
      return { key: nextKey(), kind: "tool_call", name: item.name, arguments: item.arguments, label: item.label };
    case "tool_result":
      return { key: nextKey(), kind: "tool_result", name: item.name, ok: item.ok, content: item.content };
    case "card":
      if (item.outbound.kind === "text") return { key: nextKey(), kind: "assistant", text: item.outbound.text };
      return {
        key: nextKey(),
        kind: "card",
        outbound: item.outbound,
        status: item.status,
        reason: item.reason,
        merge_commit: item.merge_commit,
      };
  }
}

export interface Chat {
  session: string | null;
  entries: Entry[];
  running: boolean;
  connection: Connection;
  loading: boolean;
  send: (text: string) => boolean;
  stop: () => void;
}

export function useChat(session: string | null, onSession: (id: string) => void): Chat {
  const [entries, setEntries] = useState<Entry[]>([]);
  const [running, setRunning] = useState(false);
  const [connection, setConnection] = useState<Connection>("connecting");
  const [loading, setLoading] = useState(false);
  const [current, setCurrent] = useState<string | null>(session);
  const socketRef = useRef<ChatSocket | null>(null);
  const streamingRef = useRef<string | null>(null);
  const seenRef = useRef(new Set<number>());
  const backlogRef = useRef<ServerFrame[] | null>(null);
  const onSessionRef = useRef(onSession);
  onSessionRef.current = onSession;

  const push = useCallback((entry: Entry) => setEntries((list) => [...list, entry]), []);

  const handle = useCallback(
    (frame: ServerFrame) => {
      switch (frame.type) {
        case "session":
          setCurrent(frame.id);
          onSessionRef.current(frame.id);
          break;
        case "accepted":
          setEntries((list) => list.map((e) => (e.kind === "user" && e.pending ? { ...e, pending: false } : e)));
          break;
        case "token": {
          const key = streamingRef.current;
          if (key === null) {
            const fresh = nextKey();
            streamingRef.current = fresh;
            push({ key: fresh, kind: "assistant", text: frame.text, streaming: true });
          } else {
            setEntries((list) =>
              list.map((e) => (e.key === key && e.kind === "assistant" ? { ...e, text: e.text + frame.text } : e)),
            );
          }
          setRunning(true);
          break;
        }
        case "tool_call":
          finish(streamingRef.current);
          streamingRef.current = null;
          push({ key: nextKey(), kind: "tool_call", name: frame.name, arguments: frame.arguments, label: frame.label });
          setRunning(true);
          break;
        case "tool_result":
          push({ key: nextKey(), kind: "tool_result", name: frame.name, ok: frame.ok, content: frame.content });
          break;
        case "reply": {
          if (frame.outbox_id != null) {
            if (seenRef.current.has(frame.outbox_id)) return;
            seenRef.current.add(frame.outbox_id);
          }
          const key = streamingRef.current;
          streamingRef.current = null;
          if (frame.kind === "text") {
            if (key !== null && frame.reply_to) {
              setEntries((list) =>
                list.map((e) => (e.key === key && e.kind === "assistant" ? { ...e, text: frame.text, streaming: false } : e)),
              );
            } else {
              push({ key: nextKey(), kind: "assistant", text: frame.text });
            }
          } else {
            finish(key);
            push({ key: nextKey(), kind: "card", outbound: frame as Outbound });
          }
          // Done; or, for a confirmation, parked until the user answers (not running: no Stop).
          setRunning(false);
          break;
        }
        case "stopped":
          finish(streamingRef.current);
          streamingRef.current = null;
          if (frame.message_id != null) push({ key: nextKey(), kind: "stopped" });
          setRunning(false);
          break;
        case "error":
          finish(streamingRef.current);
          streamingRef.current = null;
          push({ key: nextKey(), kind: "error", text: frame.message });
          setRunning(false);
          break;
        default:
          break;
      }
      function finish(key: string | null) {
        if (key === null) return;
        setEntries((list) => list.map((e) => (e.key === key && e.kind === "assistant" ? { ...e, streaming: false } : e)));
      }
    },
    [push],
  );

  // Open the socket of the session the route names (unless this socket is already in it).
  useEffect(() => {
    if (socketRef.current && session !== null && socketRef.current.sessionId === session) return;
    socketRef.current?.close();
    setEntries([]);
    setRunning(false);
    setCurrent(session);
    streamingRef.current = null;
    seenRef.current = new Set();
    setConnection("connecting");
    const socket = new ChatSocket(session ?? "new", {
      frame: (f) => {
        if (backlogRef.current !== null && socketRef.current === socket) backlogRef.current.push(f);
        else if (socketRef.current === socket) handle(f);
      },
      open: async () => {
        if (socketRef.current !== socket) return;
        const id = socket.sessionId;
        if (id !== "new") {
          backlogRef.current = [];
          setLoading(true);
          try {
            const detail = await getSession(id);
            if (socketRef.current !== socket) return;
            const items = detail.timeline.map(fromTimeline);
            const seen = new Set<number>();
            for (const item of detail.timeline) {
              if ("outbox_id" in item && item.outbox_id != null) seen.add(item.outbox_id);
            }
            seenRef.current = seen;
            streamingRef.current = null;
            setEntries(items);
            setRunning(detail.timeline.some((i) => i.kind === "user" && i.pending && (i.status === "pending" || i.status === "running")));
          } catch {
            // the socket says why (unknown or not yours) and closes
          } finally {
            setLoading(false);
            const waiting = backlogRef.current ?? [];
            backlogRef.current = null;
            for (const f of waiting) handle(f);
          }
        }
        setConnection("open");
        socket.send({ type: "resume" });
      },
      closed: () => {
        if (socketRef.current === socket) setConnection("closed");
      },
    });
    socketRef.current = socket;
    socket.open();
  }, [session, handle]);

  useEffect(
    () => () => {
      socketRef.current?.close();
      socketRef.current = null;
    },
    [],
  );

  const send = useCallback(
    (text: string) => {
      const socket = socketRef.current;
      if (!socket || !socket.send({ type: "message", message: text })) return false;
      streamingRef.current = null;
      push({ key: nextKey(), kind: "user", text, pending: true });
      setRunning(true);
      // `/lang ru` changes the language of the user's chats; the page follows it.
      const lang = /^\/lang\s+(en|ru)\b/i.exec(text.trim());
      if (lang) setLocale(lang[1].toLowerCase() as Locale);
      return true;
    },
    [push],
  );

  const stop = useCallback(() => {
    const socket = socketRef.current;
    if (socket?.send({ type: "stop" })) return;
    const id = socket?.sessionId;
    if (id && id !== "new") {
      stopSession(id).then(
        () => setRunning(false),
        () => setRunning(false),
      );
    } else setRunning(false);
  }, []);

  return { session: current, entries, running, connection, loading, send, stop };
}
