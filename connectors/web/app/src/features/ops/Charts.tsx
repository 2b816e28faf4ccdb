// Small SVG charts (no chart library): tokens per day stacked by model, cost per model.
import { t } from "../../i18n";
import type { DayModel } from "./api";
import { day, num, usd } from "./format";

// Distinct, AA-contrast-on-white hues for up to eight models (then they repeat).
const HUES = ["#1f5fbf", "#1a7f37", "#b42318", "#7a4e00", "#6f42c1", "#0e7490", "#9a3412", "#4d5562"];

export function colourOf(models: string[], model: string): string {
  return HUES[Math.max(0, models.indexOf(model)) % HUES.length];
}

function daysFrom(first: string, count: number): string[] {
  const start = new Date(`${first}T00:00:00Z`).getTime();
  return Array.from({ length: count }, (_, i) =>
    new Date(start + i * 86_400_000).toISOString().slice(0, 10),
  );
}

export function TokensPerDay({
  rows,
  firstDay,
  days,
}: {
  rows: DayModel[];
  firstDay: string;
  days: number;
}) {
  const models = [...new Set(rows.map((r) => r.model))].sort();
  const axis = daysFrom(firstDay, days);
  const totals = axis.map((d) =>
    rows.filter((r) => r.day === d).reduce((s, r) => s + r.tokens_in + r.tokens_out, 0),
  );
  const max = Math.max(1, ...totals);
  const W = 640;
  const H = 160;
  const pad = 24;
  const bw = (W - pad) / axis.length;
  const total = totals.reduce((a, b) => a + b, 0);
  const summary = t("ops.chart.tokensSummary", { count: total, n: num(total), days });
  return (
    <figure className="ops-chart">
      <svg viewBox={`0 0 ${W} ${H + 20}`} role="img" aria-label={summary}>
        <line x1={pad} y1={H} x2={W} y2={H} className="ops-axis" />
        <text x={0} y={12} className="ops-tick">
          {num(max)}
        </text>
        {axis.map((d, i) => {
          let y = H;
          const x = pad + i * bw + 2;
          return (
            <g key={d}>
              {rows
                .filter((r) => r.day === d)
                .map((r) => {
                  const h = ((r.tokens_in + r.tokens_out) / max) * (H - 16);
                  y -= h;
                  return (
                    <rect
                      key={r.model}
                      x={x}
                      y={y}
                      width={Math.max(2, bw - 4)}
                      height={h}
                      fill={colourOf(models, r.model)}
                    >
                      <title>{`${day(d)} · ${r.model}: ${num(r.tokens_in + r.tokens_out)}`}</title>
                    </rect>
                  );
                })}
              {(i % Math.ceil(axis.length / 7) === 0 || i === axis.length - 1) && (
                <text x={x} y={H + 14} className="ops-tick">
                  {day(d)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption>{summary}</figcaption>
      <Legend models={models} />
    </figure>
  );
}

export function CostPerModel({ rows }: { rows: DayModel[] }) {
  const models = [...new Set(rows.map((r) => r.model))].sort();
  const cost = models.map((m) => ({
    model: m,
    cost: rows.filter((r) => r.model === m).reduce((s, r) => s + r.cost_usd, 0),
    calls: rows.filter((r) => r.model === m).reduce((s, r) => s + r.calls, 0),
  }));
  const max = Math.max(1e-9, ...cost.map((c) => c.cost));
  const W = 640;
  const row = 26;
  const total = cost.reduce((s, c) => s + c.cost, 0);
  const summary = t("ops.chart.costSummary", { cost: usd(total) });
  return (
    <figure className="ops-chart">
      <svg viewBox={`0 0 ${W} ${Math.max(1, cost.length) * row}`} role="img" aria-label={summary}>
        {cost.map((c, i) => (
          <g key={c.model}>
            <rect
              x={220}
              y={i * row + 4}
              width={Math.max(2, (c.cost / max) * (W - 330))}
              height={row - 10}
              fill={colourOf(models, c.model)}
            />
            <text x={0} y={i * row + 18} className="ops-label">
              {c.model.length > 30 ? `${c.model.slice(0, 29)}…` : c.model}
            </text>
            <text x={W - 100} y={i * row + 18} className="ops-label">
              {usd(c.cost)}
            </text>
            <title>{`${c.model}: ${usd(c.cost)}, ${t("ops.calls", { count: c.calls, n: num(c.calls) })}`}</title>
          </g>
        ))}
      </svg>
      <figcaption>{summary}</figcaption>
    </figure>
  );
}

function Legend({ models }: { models: string[] }) {
  if (!models.length) return null;
  return (
    <ul className="ops-legend" aria-label={t("ops.chart.legend")}>
      {models.map((m) => (
        <li key={m}>
          <span className="ops-swatch" style={{ background: colourOf(models, m) }} aria-hidden="true" />
          {m}
        </li>
      ))}
    </ul>
  );
}
