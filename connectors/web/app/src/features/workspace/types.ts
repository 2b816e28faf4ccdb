// The contract between the workspace's component registry and the components it maps:
// every NXML component gets its resolved render node and a way to run the panel's tools.
import type { Json, RenderNode } from "../../api/panels";

export type { Json, RenderNode };

/** Runs a Logic tool of the panel; resolves true when the tool succeeded (errors are
 * shown by the panel frame, inline). */
export type TriggerFn = (tool: string, args: Record<string, Json>) => Promise<boolean>;

export interface NodeProps {
  node: RenderNode;
  onTrigger: TriggerFn;
  /** The panel the node belongs to, and its tools (qualified names, as GET /api/v1/panels). */
  panelId: string;
  tools?: readonly string[];
}

/** The node's own trigger with ``extra`` arguments merged over its resolved ones (the
 * semantics of the server preview, nexflow/panels/runtime/html.py). */
export function fire(node: RenderNode, onTrigger: TriggerFn, extra: Record<string, Json> = {}): Promise<boolean> {
  if (!node.trigger) return Promise.resolve(false);
  return onTrigger(node.trigger.tool, { ...node.trigger.args, ...extra });
}

export function str(value: Json | undefined): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

export function prop(node: RenderNode, name: string): Json | undefined {
  return node.props[name];
}
