// Display-only components of the catalogue: Metric, StatusBadge, Text, Code, Table.
import { t } from "../../../i18n";
import { str, type Json, type NodeProps } from "../types";

const TREND: Record<string, string> = { up: "↑", down: "↓", flat: "→" };
const TONES: Record<string, string[]> = {
  ok: ["ok", "up", "healthy", "running", "online", "active", "success", "passed", "done", "ready"],
  warn: ["warn", "warning", "degraded", "pending", "rebooting", "restarting", "starting", "busy", "slow", "queued", "maintenance"],
  error: ["error", "down", "failed", "failure", "offline", "critical", "crashed", "dead", "canceled", "cancelled"],
};

/** The tone of a status word, as nexflow/panels/runtime/format.py tone_of. */
export function toneOf(value: Json | undefined, tone: Json | undefined): string {
  if (typeof tone === "string" && ["ok", "warn", "error", "info"].includes(tone)) return tone;
  const word = str(value).trim().toLowerCase();
  for (const [name, words] of Object.entries(TONES)) if (words.includes(word)) return name;
  return "info";
}

export function Metric({ node }: NodeProps) {
  const trend = str(node.props.trend);
  return (
    <div className="c-metric">
      <span className="c-metric-label">{str(node.props.label)}</span>
      <span className="c-metric-value">
        {str(node.props.value)}
        {str(node.props.unit)}
        {TREND[trend] && (
          <span className="c-metric-trend" aria-label={t(`ws.trend.${trend}`)}>
            {" "}
            {TREND[trend]}
          </span>
        )}
      </span>
    </div>
  );
}

export function StatusBadge({ node }: NodeProps) {
  const tone = toneOf(node.props.value, node.props.tone);
  return (
    <div className="c-badge">
      <span className="c-badge-label">{str(node.props.label)}</span>
      <span className={`badge tone-${tone}`}>{str(node.props.value)}</span>
    </div>
  );
}

export function Text({ node }: NodeProps) {
  const tone = str(node.props.tone) || "default";
  if (tone === "heading") return <h3 className="c-text heading">{str(node.props.text)}</h3>;
  return <p className={`c-text ${tone}`}>{str(node.props.text)}</p>;
}

export function Code({ node }: NodeProps) {
  const language = str(node.props.language) || "text";
  return (
    <figure className="c-code">
      <figcaption className="muted">{language}</figcaption>
      <pre tabIndex={0} aria-label={t("ws.code", { language })}>
        <code className={`language-${language}`}>{str(node.props.code)}</code>
      </pre>
    </figure>
  );
}

/** Columns and rows as format.py ``table``: the named keys, or the first row's. */
export function tableOf(data: Json | undefined, columns: Json | undefined): [string[], string[][]] {
  const rows = (Array.isArray(data) ? data : []).filter(
    (r): r is Record<string, Json> => typeof r === "object" && r !== null && !Array.isArray(r),
  );
  const cols =
    typeof columns === "string" && columns.trim()
      ? columns.split(",").map((c) => c.trim()).filter(Boolean)
      : rows[0]
        ? Object.keys(rows[0])
        : [];
  return [cols, rows.map((r) => cols.map((c) => str(r[c])))];
}

export function Table({ node }: NodeProps) {
  const [cols, rows] = tableOf(node.props.data, node.props.columns);
  if (rows.length === 0) return <p className="muted">{t("ws.empty")}</p>;
  return (
    <div className="c-table" tabIndex={0} role="region" aria-label={t("ws.table")}>
      <table>
        <thead>
          <tr>
            {cols.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {r.map((v, j) => (
                <td key={j}>{v}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
