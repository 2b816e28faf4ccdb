// The flowchart editor: an @xyflow/react canvas over the panel's nodes and edges. Every
// edit is a call of one of the panel's tools (move_node, connect, rename_node, label_edge,
// remove_node, remove_edge, add_node and the Diagram's own trigger for selection); the
// canvas then follows the render tree the gateway sends back, so an edit made by the AI or
// in another tab shows up the same way, without touching the viewport.
import {
  Background,
  Controls,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type NodeChange,
  type OnSelectionChangeParams,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import "./diagram.css";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { FlowEdge, FlowNode, EditContext, type Editing, type FlowEdgeType, type FlowNodeType } from "./elements";
import { td } from "./i18n";
import { edgeId, freeSpot, newId, type Chart } from "./model";
import { edgesFrom, nodesFrom } from "./redraw";
import { Toolbar } from "./Toolbar";

export type CallTool = (tool: string, args: Record<string, unknown>) => Promise<void>;

export interface EditorProps {
  chart: Chart;
  height: number;
  /** The tool run when a node is selected and its argument (the Diagram's trigger). */
  selectTool: string | null;
  selectArg: string;
  /** Which editing tools the panel has; an absent one disables that gesture. */
  has: (tool: string) => boolean;
  call: CallTool;
}

const nodeTypes = { flow: FlowNode };
const edgeTypes = { flow: FlowEdge };

export function DiagramEditor(props: EditorProps) {
  return (
    <ReactFlowProvider>
      <Editor {...props} />
    </ReactFlowProvider>
  );
}

function Editor({ chart, height, selectTool, selectArg, has, call }: EditorProps) {
  const flow = useReactFlow<FlowNodeType, FlowEdgeType>();
  const [nodes, setNodes] = useState<FlowNodeType[]>([]);
  const [edges, setEdges] = useState<FlowEdgeType[]>([]);
  const [editing, setEditing] = useState<Editing>(null);
  const [error, setError] = useState("");
  const [selection, setSelection] = useState<{ node: string | null; edge: string | null }>({
    node: null,
    edge: null,
  });
  // Positions sent with move_node and not yet back in the render tree: kept so that a
  // live update arriving in between does not snap the node back for a moment.
  const pending = useRef(new Map<string, { x: number; y: number }>());
  const lastSelected = useRef<string | null>(null);
  const [epoch, setEpoch] = useState(0); // bumped to redraw from the render tree after a refusal

  // The render tree is the truth: redraw whenever it changes, keeping what is local to
  // this tab (selection, a drag in progress, a move not confirmed yet).
  useEffect(() => {
    setNodes((prev) => nodesFrom(chart, prev, pending.current));
    setEdges((prev) => edgesFrom(chart, prev));
  }, [chart, epoch]);

  const run = useCallback(
    async (tool: string, args: Record<string, unknown>): Promise<boolean> => {
      try {
        await call(tool, args);
        setError("");
        return true;
      } catch (exc) {
        const message = exc instanceof Error ? exc.message : String(exc);
        setError(message ? td("ws.diagram.failed", { message }) : ""); // "": shown by the panel
        return false;
      }
    },
    [call],
  );

  const move = useCallback(
    (id: string, x: number, y: number) => {
      const at = { x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 };
      pending.current.set(id, at);
      void run("move_node", { id, ...at }).then((ok) => {
        if (ok) return;
        pending.current.delete(id); // refused: back where the gateway has it
        setEpoch((n) => n + 1);
      });
    },
    [run],
  );

  // Arrow keys move a focused node without a drag: save once the keys rest.
  const keyMoves = useRef(new Map<string, number>());
  const onNodesChange = useCallback(
    (changes: NodeChange<FlowNodeType>[]) => {
      const kept = changes.filter((c) => c.type !== "remove"); // removal waits for the tool
      setNodes((prev) => applyNodeChanges(kept, prev));
      for (const c of kept) {
        if (c.type !== "position" || c.dragging !== undefined || !c.position || !has("move_node")) continue;
        const { x, y } = c.position;
        window.clearTimeout(keyMoves.current.get(c.id));
        keyMoves.current.set(c.id, window.setTimeout(() => move(c.id, x, y), 400));
      }
    },
    [has, move],
  );
  const onEdgesChange = useCallback((changes: EdgeChange<FlowEdgeType>[]) => {
    setEdges((prev) => applyEdgeChanges(changes.filter((c) => c.type !== "remove"), prev));
  }, []);

  const onNodeDragStop = useCallback(
    (_: unknown, __: FlowNodeType, dragged: FlowNodeType[]) => {
      for (const n of dragged) move(n.id, n.position.x, n.position.y);
    },
    [move],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      if (!c.source || !c.target || c.source === c.target) return;
      void run("connect", { source: c.source, target: c.target, label: "" });
    },
    [run],
  );

  const remove = useCallback(
    async (nodeIds: string[], edgeIds: string[]) => {
      const gone = new Set(nodeIds);
      for (const id of nodeIds) if (has("remove_node")) await run("remove_node", { id });
      for (const id of edgeIds) {
        const e = chart.edges.find((x) => edgeId(x.from, x.to) === id);
        if (e && !gone.has(e.from) && !gone.has(e.to) && has("remove_edge")) {
          await run("remove_edge", { source: e.from, target: e.to });
        }
      }
    },
    [chart, has, run],
  );

  const onSelectionChange = useCallback(
    ({ nodes: ns, edges: es }: OnSelectionChangeParams<FlowNodeType, FlowEdgeType>) => {
      const node = ns.length === 1 ? ns[0].id : null;
      setSelection({ node, edge: es.length === 1 && !ns.length ? es[0].id : null });
      const chosen = node ?? "";
      if (selectTool && chosen !== (lastSelected.current ?? "") && (node || lastSelected.current)) {
        lastSelected.current = node;
        void run(selectTool, { [selectArg]: chosen });
      }
    },
    [run, selectTool, selectArg],
  );

  const commit = useCallback(
    (value: string) => {
      const target = editing;
      setEditing(null);
      if (!target) return;
      const text = value.trim();
      if (target.kind === "node") {
        const was = chart.nodes.find((n) => n.id === target.id);
        if (was && text && text !== was.label) void run("rename_node", { id: target.id, label: text });
      } else {
        const was = chart.edges.find((e) => edgeId(e.from, e.to) === target.id);
        if (was && text !== was.label) void run("label_edge", { source: was.from, target: was.to, label: text });
      }
    },
    [chart, editing, run],
  );
  const context = useMemo(
    () => ({
      editing,
      start: (e: Editing) => {
        if (e?.kind === "node" && has("rename_node")) setEditing(e);
        if (e?.kind === "edge" && has("label_edge")) setEditing(e);
      },
      commit,
      cancel: () => setEditing(null),
    }),
    [editing, commit, has],
  );

  const addNode = useCallback(
    async (label: string, after: string | null) => {
      const id = newId(label, chart.nodes.map((n) => n.id));
      const box = document.querySelector(".gs-diagram__canvas")?.getBoundingClientRect();
      const args: Record<string, unknown> = { id, label, shape: "box" };
      if (box) {
        // In the middle of what the user looks at, below any node already there.
        const mid = flow.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 });
        const at = freeSpot({ x: mid.x - 60, y: mid.y - 20 }, nodes.map((n) => n.position), { x: 0, y: 90 });
        args.x = Math.round(at.x);
        args.y = Math.round(at.y);
      }
      if (after) args.after = after;
      return run("add_node", args);
    },
    [chart, flow, nodes, run],
  );

  const editable = has("move_node") || has("connect") || has("rename_node");
  return (
    <EditContext.Provider value={context}>
      <div className="gs-diagram" role="group" aria-label={td("ws.diagram.canvas")}>
        {editable ? (
          <Toolbar
            chart={chart}
            selection={selection}
            has={has}
            onAdd={addNode}
            onConnect={(source, target) => run("connect", { source, target, label: "" })}
            onRename={() => {
              if (selection.node) context.start({ kind: "node", id: selection.node });
              else if (selection.edge) context.start({ kind: "edge", id: selection.edge });
            }}
            onDelete={() => remove(selection.node ? [selection.node] : [], selection.edge ? [selection.edge] : [])}
          />
        ) : (
          <p className="gs-diagram__hint">{td("ws.diagram.no_tools")}</p>
        )}
        <div className="gs-diagram__canvas" style={{ height }}>
          <ReactFlow<FlowNodeType, FlowEdgeType>
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            edgeTypes={edgeTypes}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onNodeDragStop={has("move_node") ? onNodeDragStop : undefined}
            onConnect={onConnect}
            onDelete={({ nodes: ns, edges: es }) => void remove(ns.map((n) => n.id), es.map((e) => e.id))}
            onSelectionChange={onSelectionChange}
            onNodeDoubleClick={(_, n) => context.start({ kind: "node", id: n.id })}
            onEdgeDoubleClick={(_, e) => context.start({ kind: "edge", id: e.id })}
            nodesDraggable={has("move_node")}
            nodesConnectable={has("connect")}
            deleteKeyCode={has("remove_node") || has("remove_edge") ? ["Delete", "Backspace"] : null}
            zoomOnDoubleClick={false}
            fitView
            fitViewOptions={{ padding: 0.2, maxZoom: 1.2 }}
            minZoom={0.2}
            proOptions={{ hideAttribution: true }}
            ariaLabelConfig={{
              "node.a11yDescription.default": td("ws.diagram.a11y.node"),
              "node.a11yDescription.keyboardDisabled": td("ws.diagram.a11y.node"),
              "node.a11yDescription.ariaLiveMessage": ({ x, y }) =>
                td("ws.diagram.a11y.moved", { x: Math.round(x), y: Math.round(y) }),
              "edge.a11yDescription.default": td("ws.diagram.a11y.edge"),
              "controls.ariaLabel": td("ws.diagram.controls"),
              "controls.zoomIn.ariaLabel": td("ws.diagram.zoom_in"),
              "controls.zoomOut.ariaLabel": td("ws.diagram.zoom_out"),
              "controls.fitView.ariaLabel": td("ws.diagram.fit"),
              "controls.interactive.ariaLabel": td("ws.diagram.lock"),
              "handle.ariaLabel": td("ws.diagram.handle"),
            }}
          >
            <Background gap={20} />
            <Controls showInteractive={false} />
          </ReactFlow>
        </div>
        <p className="gs-diagram__status" role="status" aria-live="polite">
          {error}
        </p>
        <p className="gs-diagram__hint">{td("ws.diagram.hint")}</p>
      </div>
    </EditContext.Provider>
  );
}
