// The canvas's nodes and edges from the chart in the render tree, reusing the previous
// objects where nothing changed. That reuse matters: xyflow keeps a node's measured size
// on the object, and a node without one is hidden until measured again — which would also
// blur (and so end) a label being edited in it whenever a live update arrives.
import { td } from "./i18n";
import type { FlowEdgeType, FlowNodeType } from "./elements";
import { edgeId, positions, type Chart } from "./model";

const NEAR = 0.5; // a stored position this close to the one sent means "saved"
const MARKER = { type: "arrowclosed" as const, width: 18, height: 18, color: "#1b1f24" };

/** ``pending``: positions sent with move_node and not yet in the chart; an entry is
 * dropped once the chart has it, and shown meanwhile so the node does not jump back. */
export function nodesFrom(
  chart: Chart,
  prev: readonly FlowNodeType[],
  pending: Map<string, { x: number; y: number }>,
): FlowNodeType[] {
  const placed = positions(chart);
  const vertical = chart.direction !== "LR";
  const before = new Map(prev.map((n) => [n.id, n]));
  return chart.nodes.map((c) => {
    const old = before.get(c.id);
    let position = placed.get(c.id) ?? { x: 0, y: 0 };
    const sent = pending.get(c.id);
    if (sent) {
      if (Math.abs(sent.x - position.x) < NEAR && Math.abs(sent.y - position.y) < NEAR) {
        pending.delete(c.id);
      } else position = sent;
    }
    if (old?.dragging) position = old.position;
    const data = { label: c.label, shape: c.shape, vertical };
    if (
      old &&
      old.position.x === position.x &&
      old.position.y === position.y &&
      old.data.label === data.label &&
      old.data.shape === data.shape &&
      old.data.vertical === data.vertical
    ) {
      return old;
    }
    return {
      ...old, // what xyflow measured, the selection
      id: c.id,
      type: "flow" as const,
      position,
      selected: old?.selected ?? false,
      data,
      ariaLabel: td("ws.diagram.node", { name: c.label }),
    };
  });
}

export function edgesFrom(chart: Chart, prev: readonly FlowEdgeType[]): FlowEdgeType[] {
  const before = new Map(prev.map((e) => [e.id, e]));
  return chart.edges.map((e) => {
    const id = edgeId(e.from, e.to);
    const old = before.get(id);
    if (old && old.data?.label === e.label) return old;
    return {
      id,
      type: "flow" as const,
      source: e.from,
      target: e.to,
      selected: old?.selected ?? false,
      data: { label: e.label },
      markerEnd: MARKER,
      ariaLabel: td("ws.diagram.edge", { name: `${e.from} → ${e.to}` }),
    };
  });
}
