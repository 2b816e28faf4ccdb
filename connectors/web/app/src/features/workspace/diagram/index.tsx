// The NXML Diagram component as a real editor. The workspace's component registry loads
// this module on demand (React.lazy) and passes the render node, the panel id and its
// trigger callback; without a callback the editor calls the tools over HTTP itself.
// Editing tools are found by convention (docs/graphstudio/flowchart.md): move_node,
// connect, rename_node, label_edge, remove_node, remove_edge, add_node; a panel that lacks
// one simply does not get that gesture, so a read-only Diagram stays read-only.
import { useCallback, useEffect, useMemo, useState } from "react";
import { callTool, getPanel, type Json, type ToolOutcome } from "../../../api/panels";
import { useLocale } from "../../../i18n";
import type { NodeProps } from "../types";
import { DiagramEditor } from "./DiagramEditor";
import { readChart } from "./model";

/** The registry's props; ``onTrigger`` may be absent when the editor is used on its own. */
export type DiagramViewProps = Omit<NodeProps, "onTrigger"> & { onTrigger?: NodeProps["onTrigger"] };

/** The short name of a tool: "9bc2374b__main__flowchart__add_node" → "add_node". */
function short(name: string): string {
  const parts = name.split("__");
  return parts[parts.length - 1];
}

/** Why a tool call failed, or null. "" when the registry already shows the error
 * (its onTrigger resolves false), so the editor does not say it twice. */
function failure(result: ToolOutcome | boolean): string | null {
  if (result === false) return "";
  if (typeof result === "object" && !result.ok) return result.error?.message ?? "refused";
  return null;
}

export function DiagramView({ node, panelId, tools, onTrigger }: DiagramViewProps) {
  useLocale();
  const [fetched, setFetched] = useState<readonly string[] | null>(null);
  useEffect(() => {
    if (tools || !panelId) return;
    let live = true;
    getPanel(panelId).then(
      (p) => live && setFetched(p.tools),
      () => live && setFetched([]),
    );
    return () => {
      live = false;
    };
  }, [panelId, tools]);
  const known = useMemo(() => new Set((tools ?? fetched ?? []).map(short)), [tools, fetched]);
  const loaded = tools !== undefined || fetched !== null;
  const has = useCallback((tool: string) => loaded && known.has(tool), [known, loaded]);

  const call = useCallback(
    async (tool: string, args: Record<string, unknown>) => {
      const sent = args as Record<string, Json>;
      const result = onTrigger ? await onTrigger(tool, sent) : await callTool(panelId, tool, sent);
      const problem = failure(result);
      if (problem !== null) throw new Error(problem);
    },
    [panelId, onTrigger],
  );

  const props = node.props as Record<string, unknown>;
  const chart = useMemo(
    () => readChart({ nodes: props.nodes, edges: props.edges, direction: props.direction }),
    [props.nodes, props.edges, props.direction],
  );
  const height = typeof props.height === "number" && props.height > 120 ? props.height : 320;
  const arg = typeof props.arg === "string" && props.arg ? props.arg : "id";
  return (
    <DiagramEditor
      chart={chart}
      height={height}
      selectTool={node.trigger?.tool ?? null}
      selectArg={arg}
      has={has}
      call={call}
    />
  );
}

export default DiagramView;
