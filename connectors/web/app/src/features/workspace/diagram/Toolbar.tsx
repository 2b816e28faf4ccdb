// Keyboard alternatives to the gestures: add a node by label, connect the selected node to
// another, rename or delete the selection (zoom and fit are in the canvas's own controls).
import { useState } from "react";
import { td } from "./i18n";
import type { Chart } from "./model";

export interface ToolbarProps {
  chart: Chart;
  selection: { node: string | null; edge: string | null };
  has: (tool: string) => boolean;
  onAdd: (label: string, after: string | null) => Promise<boolean>;
  onConnect: (source: string, target: string) => Promise<boolean>;
  onRename: () => void;
  onDelete: () => void;
}

export function Toolbar({ chart, selection, has, onAdd, onConnect, onRename, onDelete }: ToolbarProps) {
  const [label, setLabel] = useState("");
  const [target, setTarget] = useState("");
  const selected = selection.node ?? selection.edge;
  const name = selection.node
    ? chart.nodes.find((n) => n.id === selection.node)?.label ?? selection.node
    : selection.edge;
  const add = async (after: string | null) => {
    const text = label.trim();
    if (text && (await onAdd(text, after))) setLabel("");
  };
  const others = chart.nodes.filter((n) => n.id !== selection.node);
  return (
    <div className="gs-diagram__toolbar" role="toolbar" aria-label={td("ws.diagram.toolbar")}>
      {has("add_node") && (
        <form
          className="gs-diagram__group"
          onSubmit={(e) => {
            e.preventDefault();
            void add(null);
          }}
        >
          <input
            className="gs-diagram__field"
            aria-label={td("ws.diagram.new_label")}
            placeholder={td("ws.diagram.new_label")}
            value={label}
            maxLength={80}
            onChange={(e) => setLabel(e.target.value)}
          />
          <button type="submit" disabled={!label.trim()}>
            {td("ws.diagram.add")}
          </button>
          <button type="button" disabled={!label.trim() || !selection.node} onClick={() => void add(selection.node)}>
            {td("ws.diagram.add_after")}
          </button>
        </form>
      )}
      {has("connect") && (
        <div className="gs-diagram__group">
          <label className="gs-diagram__label">
            {td("ws.diagram.connect_to")}
            <select
              className="gs-diagram__field"
              value={target}
              disabled={!selection.node}
              onChange={(e) => setTarget(e.target.value)}
            >
              <option value="">{td("ws.diagram.choose")}</option>
              {others.map((n) => (
                <option key={n.id} value={n.id}>
                  {n.label}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            disabled={!selection.node || !target}
            onClick={() => {
              if (selection.node && target) void onConnect(selection.node, target).then((ok) => ok && setTarget(""));
            }}
          >
            {td("ws.diagram.connect")}
          </button>
        </div>
      )}
      <div className="gs-diagram__group">
        <span className="gs-diagram__selected">
          {selected ? td("ws.diagram.selected", { name: name ?? "" }) : td("ws.diagram.nothing_selected")}
        </span>
        <button
          type="button"
          disabled={!selected || !(selection.node ? has("rename_node") : has("label_edge"))}
          onClick={onRename}
        >
          {td("ws.diagram.rename")}
        </button>
        <button
          type="button"
          className="gs-diagram__danger"
          disabled={!selected || !(selection.node ? has("remove_node") : has("remove_edge"))}
          onClick={onDelete}
        >
          {td("ws.diagram.delete")}
        </button>
      </div>
    </div>
  );
}
