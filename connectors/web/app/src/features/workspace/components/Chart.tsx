// Chart: a small SVG line or bar chart; one series per key of ``y`` (comma-separated),
// x labels from ``x`` (or the item index). A table alternative is offered to screen readers.
import { t } from "../../../i18n";
import { str, type Json, type NodeProps } from "../types";

const COLOURS = ["var(--accent)", "var(--ok)", "var(--danger)", "var(--warn)"];
const W = 320;
const H = 120;

function numberAt(item: Json, key: string | null): number | null {
  const v = key && typeof item === "object" && item !== null && !Array.isArray(item) ? item[key] : item;
  return typeof v === "number" ? v : null;
}

export function seriesOf(data: Json[], y: Json | undefined): { key: string; values: (number | null)[] }[] {
  const keys = typeof y === "string" && y.trim() ? y.split(",").map((k) => k.trim()).filter(Boolean) : [null];
  return keys.map((key) => ({ key: key ?? "", values: data.map((item) => numberAt(item, key)) }));
}

export function Chart({ node }: NodeProps) {
  const data = Array.isArray(node.props.data) ? node.props.data : [];
  const series = seriesOf(data, node.props.y);
  const xKey = typeof node.props.x === "string" ? node.props.x : null;
  const labels = data.map((item, i) =>
    xKey && typeof item === "object" && item !== null && !Array.isArray(item) ? str(item[xKey]) : String(i + 1),
  );
  const numbers = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const title = str(node.props.title);
  const height = typeof node.props.height === "number" ? node.props.height : 240;
  if (numbers.length === 0) {
    return (
      <figure className="c-chart">
        {title && <figcaption>{title}</figcaption>}
        <p className="muted">{t("ws.chart.empty")}</p>
      </figure>
    );
  }
  const low = Math.min(0, ...numbers);
  const high = Math.max(...numbers) || 1;
  const span = high - low || 1;
  const n = data.length;
  const step = W / n;
  const yOf = (v: number) => H - ((v - low) / span) * H;
  const bar = str(node.props.kind) === "bar";
  const summary = t("ws.chart.summary", { count: n, min: Math.min(...numbers), max: Math.max(...numbers) });
  return (
    <figure className="c-chart">
      {title && <figcaption>{title}</figcaption>}
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" style={{ height }} role="img" aria-label={`${title} ${summary}`.trim()}>
        <line x1={0} y1={yOf(0)} x2={W} y2={yOf(0)} className="axis" />
        {series.map((s, si) =>
          bar ? (
            s.values.map((v, i) =>
              v === null ? null : (
                <rect
                  key={`${si}-${i}`}
                  x={i * step + (step * 0.1) + (si * step * 0.8) / series.length}
                  width={(step * 0.8) / series.length}
                  y={Math.min(yOf(v), yOf(0))}
                  height={Math.abs(yOf(0) - yOf(v))}
                  fill={COLOURS[si % COLOURS.length]}
                >
                  <title>{`${labels[i]}: ${v}`}</title>
                </rect>
              ),
            )
          ) : (
            <polyline
              key={si}
              fill="none"
              stroke={COLOURS[si % COLOURS.length]}
              strokeWidth={2}
              vectorEffect="non-scaling-stroke"
              points={s.values
                .map((v, i) => (v === null ? null : `${(i * step + step / 2).toFixed(1)},${yOf(v).toFixed(1)}`))
                .filter(Boolean)
                .join(" ")}
            />
          ),
        )}
      </svg>
      <div className="c-chart-x muted" aria-hidden="true">
        <span>{labels[0]}</span>
        <span>{labels[n - 1]}</span>
      </div>
      {series.length > 1 && (
        <ul className="c-chart-legend">
          {series.map((s, i) => (
            <li key={s.key}>
              <span className="swatch" style={{ background: COLOURS[i % COLOURS.length] }} aria-hidden="true" />
              {s.key}
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}
