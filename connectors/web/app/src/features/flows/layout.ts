// A simple layered layout (no dependency): a node's layer is the longest path to it from a
// node with no incoming edge; nodes of one layer sit side by side in file order. The flow
// format has no place for positions (its node models forbid extra keys), so the canvas lays
// the graph out itself; positions dragged by hand are kept per browser (localStorage).
export interface XY {
  x: number;
  y: number;
}

export const NODE_W = 190;
export const NODE_H = 74;
const GAP_X = 50;
const GAP_Y = 70;

export function layered(ids: string[], edges: { source: string; target: string }[]): Map<string, XY> {
  const incoming = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) incoming.get(e.target)?.push(e.source);
  const layer = new Map<string, number>();
  const visiting = new Set<string>();
  const depth = (id: string): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle (invalid anyway): cut it
    visiting.add(id);
    let d = 0;
    for (const s of incoming.get(id) ?? []) if (incoming.has(s)) d = Math.max(d, depth(s) + 1);
    visiting.delete(id);
    layer.set(id, d);
    return d;
  };
  const rows = new Map<number, string[]>();
  for (const id of ids) {
    const d = depth(id);
    rows.set(d, [...(rows.get(d) ?? []), id]);
  }
  const out = new Map<string, XY>();
  for (const [d, row] of rows) {
    const width = row.length * NODE_W + (row.length - 1) * GAP_X;
    row.forEach((id, i) => out.set(id, { x: i * (NODE_W + GAP_X) - width / 2, y: d * (NODE_H + GAP_Y) }));
  }
  return out;
}

const KEY = "nexflow.flowpos.";

export function loadPositions(flow: string): Record<string, XY> {
  try {
    const raw = localStorage.getItem(KEY + flow);
    return raw ? (JSON.parse(raw) as Record<string, XY>) : {};
  } catch {
    return {};
  }
}

export function savePositions(flow: string, positions: Record<string, XY>): void {
  try {
    localStorage.setItem(KEY + flow, JSON.stringify(positions));
  } catch {
    /* storage full or off: positions are a convenience */
  }
}
