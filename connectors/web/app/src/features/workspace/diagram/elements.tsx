// The canvas's own node and edge: a label you can double-click to rename in place
// (Enter saves, Escape cancels), connection handles placed by the chart's direction.
import {
  BaseEdge,
  EdgeLabelRenderer,
  Handle,
  Position,
  getBezierPath,
  type Edge,
  type EdgeProps,
  type Node,
  type NodeProps,
} from "@xyflow/react";
import { createContext, useContext, useRef, useState } from "react";
import { td } from "./i18n";
import type { Shape } from "./model";

export type FlowNodeType = Node<{ label: string; shape: Shape; vertical: boolean }, "flow">;
export type FlowEdgeType = Edge<{ label: string }, "flow">;
export type Editing = { kind: "node" | "edge"; id: string } | null;

export const EditContext = createContext<{
  editing: Editing;
  start: (e: Editing) => void;
  commit: (value: string) => void;
  cancel: () => void;
}>({ editing: null, start: () => {}, commit: () => {}, cancel: () => {} });

function LabelInput({ initial, label }: { initial: string; label: string }) {
  const { commit, cancel } = useContext(EditContext);
  const [value, setValue] = useState(initial);
  const done = useRef(false);
  const finish = (save: boolean) => {
    if (done.current) return;
    done.current = true;
    if (save) commit(value);
    else cancel();
  };
  return (
    <input
      className="gs-diagram__input nodrag nopan nowheel"
      aria-label={label}
      value={value}
      autoFocus
      onFocus={(e) => e.currentTarget.select()}
      onChange={(e) => setValue(e.target.value)}
      onKeyDown={(e) => {
        e.stopPropagation(); // Delete, Backspace and arrows edit the text, not the chart
        if (e.key === "Enter") finish(true);
        if (e.key === "Escape") finish(false);
      }}
      onBlur={() => {
        // Leaving the field saves, but not when the whole window lost focus (another tab
        // or window): the edit is still there when the user comes back.
        if (document.hasFocus()) finish(true);
      }}
    />
  );
}

export function FlowNode({ id, data, selected }: NodeProps<FlowNodeType>) {
  const { editing } = useContext(EditContext);
  const isEditing = editing?.kind === "node" && editing.id === id;
  const classes = `gs-flow-node gs-flow-node--${data.shape}${selected ? " is-selected" : ""}`;
  return (
    <div className={classes} data-node-id={id}>
      <Handle type="target" position={data.vertical ? Position.Top : Position.Left} />
      {isEditing ? (
        <LabelInput initial={data.label} label={td("ws.diagram.edit_node", { name: data.label })} />
      ) : (
        <span className="gs-flow-node__label">{data.label}</span>
      )}
      <Handle type="source" position={data.vertical ? Position.Bottom : Position.Right} />
    </div>
  );
}

export function FlowEdge(props: EdgeProps<FlowEdgeType>) {
  const { id, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition } = props;
  const { editing, start } = useContext(EditContext);
  const [path, x, y] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  const label = props.data?.label ?? "";
  const isEditing = editing?.kind === "edge" && editing.id === id;
  return (
    <>
      <BaseEdge
        id={id}
        path={path}
        markerEnd={props.markerEnd}
        className={props.selected ? "gs-flow-edge is-selected" : "gs-flow-edge"}
        interactionWidth={24}
      />
      {(label || isEditing) && (
        <EdgeLabelRenderer>
          <div
            className={`gs-flow-edge__label nodrag nopan${props.selected ? " is-selected" : ""}`}
            style={{ transform: `translate(-50%, -50%) translate(${x}px, ${y}px)` }}
            data-edge-id={id}
            onDoubleClick={() => start({ kind: "edge", id })}
          >
            {isEditing ? (
              <LabelInput initial={label} label={td("ws.diagram.edit_edge", { name: id })} />
            ) : (
              label
            )}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}
