// Live gateway log from WS /ws/logs (owner only). The socket sends one log line per text
// frame: a JSON object (event, level, timestamp, and the bound user_id, session_id,
// channel…) with the json log format, plain text with the console one. With a stored
// token the first frame is {"type":"auth","token"} (the server answers {"type":"auth_ok"});
// on loopback without a token the handshake is enough, and any frame we sent would be
// taken for a goodbye, so nothing is sent then.
import { useEffect, useRef, useState } from "react";
import { token } from "../../api/client";
import { t } from "../../i18n";
import { clock, num } from "./format";

export type LogLine = {
  id: number;
  level: string;
  event: string;
  timestamp?: string;
  user?: string;
  session?: string;
  rest: string;
};

const LEVELS = ["debug", "info", "warning", "error"] as const;
const RANK: Record<string, number> = { debug: 0, info: 1, warning: 2, warn: 2, error: 3, critical: 4 };
const KEEP = 500;
let nextId = 1;

export function parseLine(text: string): LogLine | null {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (o && typeof o === "object" && !Array.isArray(o)) {
      if (o.type === "auth_ok") return null;
      const { event, level, timestamp, user_id, session_id, ...rest } = o;
      return {
        id: nextId++,
        level: String(level ?? "info"),
        event: String(event ?? ""),
        timestamp: typeof timestamp === "string" ? timestamp : undefined,
        user: user_id ? String(user_id) : undefined,
        session: session_id ? String(session_id) : undefined,
        rest: Object.keys(rest).length ? JSON.stringify(rest) : "",
      };
    }
  } catch {
    /* the console format: plain text */
  }
  const level = LEVELS.find((l) => text.toLowerCase().includes(`[${l}`)) ?? "info";
  return { id: nextId++, level, event: text, rest: "" };
}

type Conn = "connecting" | "live" | "closed" | "forbidden";

export function LogStream() {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [conn, setConn] = useState<Conn>("connecting");
  const [level, setLevel] = useState<string>("debug");
  const [session, setSession] = useState("");
  const [user, setUser] = useState("");
  const [paused, setPaused] = useState(false);
  const [follow, setFollow] = useState(true);
  const held = useRef<LogLine[]>([]);
  const [heldCount, setHeldCount] = useState(0);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const box = useRef<HTMLOListElement>(null);

  useEffect(() => {
    let ws: WebSocket | null = null;
    let stopped = false;
    let retry = 500;
    let timer: number | undefined;
    const open = () => {
      setConn("connecting");
      const proto = location.protocol === "https:" ? "wss" : "ws";
      ws = new WebSocket(`${proto}://${location.host}/ws/logs`);
      ws.onopen = () => {
        const bearer = token();
        if (bearer) ws?.send(JSON.stringify({ type: "auth", token: bearer }));
        setConn("live");
        retry = 500;
      };
      ws.onmessage = (ev: MessageEvent) => {
        if (typeof ev.data !== "string") return;
        const line = parseLine(ev.data);
        if (!line) return;
        if (pausedRef.current) {
          held.current.push(line);
          setHeldCount(held.current.length);
          return;
        }
        setLines((prev) => [...prev, line].slice(-KEEP));
      };
      ws.onclose = (ev: CloseEvent) => {
        if (stopped) return;
        if (ev.code === 4403 || ev.code === 4401) {
          setConn("forbidden");
          return;
        }
        setConn("closed");
        timer = window.setTimeout(open, retry);
        retry = Math.min(retry * 2, 10_000);
      };
    };
    open();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      ws?.close();
    };
  }, []);

  useEffect(() => {
    if (!paused && held.current.length) {
      const add = held.current;
      held.current = [];
      setHeldCount(0);
      setLines((prev) => [...prev, ...add].slice(-KEEP));
    }
  }, [paused]);

  const shown = lines.filter(
    (l) =>
      (RANK[l.level] ?? 1) >= RANK[level] &&
      (!session || (l.session ?? "").includes(session)) &&
      (!user || (l.user ?? "").includes(user)),
  );

  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [shown.length, follow]);

  return (
    <div className="ops-logs">
      <div className="ops-toolbar" role="group" aria-label={t("ops.logs.filters")}>
        <label>
          {t("ops.logs.level")}
          <select value={level} onChange={(e) => setLevel(e.target.value)} data-testid="log-level">
            {LEVELS.map((l) => (
              <option key={l} value={l}>
                {t(`ops.level.${l}`)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("ops.logs.session")}
          <input value={session} onChange={(e) => setSession(e.target.value)} size={12} />
        </label>
        <label>
          {t("ops.logs.user")}
          <input value={user} onChange={(e) => setUser(e.target.value)} size={12} />
        </label>
        <button type="button" aria-pressed={paused} onClick={() => setPaused((p) => !p)}>
          {paused ? t("ops.logs.resume") : t("ops.logs.pause")}
        </button>
        <label className="ops-check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
          {t("ops.logs.follow")}
        </label>
        <button type="button" onClick={() => setLines([])}>
          {t("ops.logs.clear")}
        </button>
        <span className={`ops-conn ops-conn-${conn}`} role="status">
          {t(`ops.conn.${conn}`)}
          {paused && heldCount > 0 && ` · ${t("ops.logs.held", { count: heldCount, n: num(heldCount) })}`}
        </span>
      </div>
      <ol
        className="ops-loglines"
        ref={box}
        tabIndex={0}
        aria-label={t("ops.logs.lines")}
        aria-live="off"
        data-testid="log-lines"
      >
        {shown.length === 0 && <li className="ops-empty">{t("ops.logs.empty")}</li>}
        {shown.map((l) => (
          <li key={l.id} className={`ops-log ops-log-${l.level}`} data-level={l.level}>
            <time>{clock(l.timestamp)}</time> <span className="ops-lvl">{l.level}</span>{" "}
            <strong>{l.event}</strong>
            {l.user && <span className="ops-tag">{t("ops.logs.userTag", { user: l.user })}</span>}
            {l.session && (
              <span className="ops-tag">{t("ops.logs.sessionTag", { session: l.session.slice(0, 8) })}</span>
            )}{" "}
            <span className="ops-rest">{l.rest}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}
