// The canvas's node: the node id, its type, its run status and tokens, one typed input port
// on top and its typed output ports below (out, then / else for a condition, error).
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import { t } from "../../i18n";
import type { PortName } from "./doc";

export interface NodeData extends Record<string, unknown> {
  type: string;
  outputs: PortName[];
  status: string | null;
  tokens: number;
  invalid: boolean;
  /** The UI language: a change redraws the (memoised) node in it. */
  lang: string;
}

export type FlowNodeType = Node<NodeData, "nexflow">;

const PORT_LEFT: Record<string, string[]> = {
  "2": ["30%", "70%"],
  "4": ["15%", "38%", "62%", "85%"],
};

export function FlowNodeCard({ id, data, selected }: NodeProps<FlowNodeType>) {
  const lefts = PORT_LEFT[String(data.outputs.length)] ?? data.outputs.map((_, i) => `${((i + 1) * 100) / (data.outputs.length + 1)}%`);
  const status = data.status ?? "idle";
  return (
    <div
      className={`fl-node${selected ? " is-selected" : ""}${data.invalid ? " is-invalid" : ""}`}
      data-node-id={id}
      data-status={status}
    >
      <Handle
        type="target"
        position={Position.Top}
        id="in"
        className="fl-port fl-port--data"
        title={t("fl.port.in", { node: id })}
      />
      <span className="fl-node__id">{id}</span>
      <span className="fl-node__type">{data.type}</span>
      {data.status && (
        <span className="fl-node__status">
          {t(`fl.status.${data.status}`)}
          {data.tokens > 0 ? ` · ${t("fl.tokensShort", { count: data.tokens })}` : ""}
        </span>
      )}
      {data.invalid && <span className="visually-hidden">{t("fl.nodeInvalid")}</span>}
      {data.outputs.map((port, i) => (
        <Handle
          key={port}
          type="source"
          position={Position.Bottom}
          id={port}
          style={{ left: lefts[i] }}
          className={`fl-port fl-port--${port === "error" ? "error" : port === "out" ? "data" : "branch"}`}
          title={t(`fl.port.${port}`, { node: id })}
        >
          {port !== "out" && <span className="fl-port__label" aria-hidden="true">{t(`fl.portShort.${port}`)}</span>}
        </Handle>
      ))}
    </div>
  );
}
