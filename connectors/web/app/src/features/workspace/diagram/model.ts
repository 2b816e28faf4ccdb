// The flowchart's data as the panel state keeps it ({id, label, shape, x?, y?} nodes,
// {from, to, label} edges), read defensively from the render tree (the AI or a hand-written
// panel may send anything), and the automatic layout for nodes that have no position yet.

export type Shape = "box" | "round" | "diamond";
export type Direction = "TB" | "LR";

export interface ChartNode {
  id: string;
  label: string;
  shape: Shape;
  x?: number;
  y?: number;
}

export interface ChartEdge {
  from: string;
  to: string;
  label: string;
}

export interface Chart {
  nodes: ChartNode[];
  edges: ChartEdge[];
  direction: Direction;
}

const SHAPES: readonly string[] = ["box", "round", "diamond"];
export const GAP_ALONG = 130; // between layers (down in TB, across in LR)
export const GAP_ACROSS = 190; // between nodes of one layer

function record(value: unknown): Record<string, unknown> | null {
  return value && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function finite(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** The chart in a Diagram node's props; malformed items are skipped, not fatal. */
export function readChart(props: Record<string, unknown>): Chart {
  const nodes: ChartNode[] = [];
  const seen = new Set<string>();
  for (const raw of Array.isArray(props.nodes) ? props.nodes : []) {
    const n = record(raw);
    const id = n && (typeof n.id === "string" || typeof n.id === "number") ? String(n.id) : "";
    if (!n || !id || seen.has(id)) continue;
    seen.add(id);
    const shape = typeof n.shape === "string" && SHAPES.includes(n.shape) ? (n.shape as Shape) : "box";
    const label = typeof n.label === "string" ? n.label : id;
    const x = finite(n.x);
    const y = finite(n.y);
    nodes.push(x !== undefined && y !== undefined ? { id, label, shape, x, y } : { id, label, shape });
  }
  const edges: ChartEdge[] = [];
  for (const raw of Array.isArray(props.edges) ? props.edges : []) {
    const e = record(raw);
    if (!e) continue;
    const from = String(e.from ?? e.source ?? "");
    const to = String(e.to ?? e.target ?? "");
    if (!seen.has(from) || !seen.has(to)) continue;
    edges.push({ from, to, label: typeof e.label === "string" ? e.label : "" });
  }
  const direction: Direction = props.direction === "LR" ? "LR" : "TB";
  return { nodes, edges, direction };
}

export function edgeId(from: string, to: string): string {
  return `${from}\u2192${to}`;
}

/** Layer of each node: the longest path from a node without incoming arrows
 * (cycles are cut, so every node gets a finite layer). */
function layers(chart: Chart): Map<string, number> {
  const incoming = new Map<string, string[]>(chart.nodes.map((n) => [n.id, []]));
  for (const e of chart.edges) if (e.from !== e.to) incoming.get(e.to)?.push(e.from);
  const layer = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (id: string): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle: cut here
    visiting.add(id);
    let depth = 0;
    for (const from of incoming.get(id) ?? []) depth = Math.max(depth, visit(from) + 1);
    visiting.delete(id);
    layer.set(id, depth);
    return depth;
  };
  chart.nodes.forEach((n) => visit(n.id));
  return layer;
}

const NODE_W = 170; // a node's footprint when looking for a free place
const NODE_H = 72;

/** The first place at or after ``from`` (stepping by ``step``) that no taken box overlaps. */
export function freeSpot(
  from: { x: number; y: number },
  taken: readonly { x: number; y: number }[],
  step: { x: number; y: number },
): { x: number; y: number } {
  let at = { ...from };
  for (let i = 0; i < 200; i++) {
    if (!taken.some((t) => Math.abs(t.x - at.x) < NODE_W && Math.abs(t.y - at.y) < NODE_H)) return at;
    at = { x: at.x + step.x, y: at.y + step.y };
  }
  return at;
}

/** Where each node is drawn: its own x, y when it has them, else a layered layout
 * top-to-bottom or left-to-right, moved along its layer past any node already there. */
export function positions(chart: Chart): Map<string, { x: number; y: number }> {
  const layer = layers(chart);
  const perLayer = new Map<number, number>();
  const out = new Map<string, { x: number; y: number }>();
  const taken: { x: number; y: number }[] = [];
  for (const n of chart.nodes) {
    if (n.x !== undefined && n.y !== undefined) {
      out.set(n.id, { x: n.x, y: n.y });
      taken.push({ x: n.x, y: n.y });
    }
  }
  const lr = chart.direction === "LR";
  const step = lr ? { x: 0, y: GAP_ACROSS / 1.6 } : { x: GAP_ACROSS, y: 0 };
  for (const n of chart.nodes) {
    if (out.has(n.id)) continue;
    const l = layer.get(n.id) ?? 0;
    const i = perLayer.get(l) ?? 0;
    perLayer.set(l, i + 1);
    const along = l * GAP_ALONG;
    const across = i * GAP_ACROSS;
    const wanted = lr ? { x: along * 1.4, y: across / 1.6 } : { x: across, y: along };
    const at = freeSpot(wanted, taken, step);
    out.set(n.id, at);
    taken.push(at);
  }
  return out;
}

/** A new node id from its label: lowercase words joined by "-", unique in the chart. */
export function newId(label: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const base =
    label
      .toLowerCase()
      .normalize("NFKD")
      .replace(/[^\p{L}\p{N}]+/gu, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 24) || "node";
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base}-${i}`)) return `${base}-${i}`;
}
