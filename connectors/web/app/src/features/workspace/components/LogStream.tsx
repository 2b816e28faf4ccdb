// LogStream: log lines (strings or {level, message, time}) with a filter the user can
// change locally, following the end while the user has not scrolled up.
import { useEffect, useId, useRef, useState } from "react";
import { t } from "../../../i18n";
import { str, type Json, type NodeProps } from "../types";

const LEVELS = new Set(["trace", "debug", "info", "notice", "warn", "warning", "error", "critical", "fatal"]);

function levelOf(line: Json): string | null {
  if (typeof line === "object" && line !== null && !Array.isArray(line) && line.level != null) {
    return str(line.level).toLowerCase();
  }
  return null;
}

export function lineText(line: Json): string {
  if (typeof line === "object" && line !== null && !Array.isArray(line)) {
    const level = line.level;
    const message = line.message ?? line.msg ?? line.text ?? "";
    const stamp = line.time ?? line.ts;
    const head = [stamp != null ? str(stamp) : "", level != null ? `[${str(level)}]` : ""].filter(Boolean).join(" ");
    return `${head} ${str(message)}`.trim();
  }
  return str(line);
}

/** format.py ``filter_lines``: a level name keeps lines of that level, other text keeps
 * lines containing it. */
export function filterLines(lines: Json[], filter: string): Json[] {
  const needle = filter.trim().toLowerCase();
  if (!needle) return lines;
  return lines.filter((line) => {
    const level = levelOf(line);
    if (LEVELS.has(needle) && level !== null) {
      return level === needle || (needle.startsWith("warn") && level.startsWith("warn"));
    }
    return lineText(line).toLowerCase().includes(needle);
  });
}

export function LogStream({ node }: NodeProps) {
  const id = useId();
  const [filter, setFilter] = useState(str(node.props.filter));
  const box = useRef<HTMLPreElement>(null);
  const follow = useRef(true);
  const all = Array.isArray(node.props.data) ? node.props.data : [];
  const max = typeof node.props.max_lines === "number" ? node.props.max_lines : 500;
  const lines = filterLines(all, filter).slice(-max);
  const height = typeof node.props.height === "number" ? node.props.height : 240;
  useEffect(() => {
    const el = box.current;
    if (el && follow.current) el.scrollTop = el.scrollHeight;
  });
  return (
    <div className="c-logs">
      <label htmlFor={id} className="visually-hidden">
        {t("ws.logs.filter")}
      </label>
      <input id={id} type="search" value={filter} placeholder={t("ws.logs.filter")} onChange={(e) => setFilter(e.target.value)} />
      <pre
        ref={box}
        tabIndex={0}
        aria-label={t("ws.logs")}
        style={{ maxHeight: height }}
        onScroll={(e) => {
          const el = e.currentTarget;
          follow.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
        }}
      >
        {lines.length === 0
          ? t("ws.logs.none")
          : lines.map((line, i) => (
              <div key={i} className={`log-line level-${levelOf(line) ?? "none"}`}>
                {lineText(line)}
              </div>
            ))}
      </pre>
    </div>
  );
}
