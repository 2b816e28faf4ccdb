// The component registry of the hydrator: every NXML component of the catalogue
// (nexflow/panels/components.py) mapped to a React component, and the walker that turns
// a resolved render tree into elements. Layout and row nodes are the engine's own.
import { lazy, Suspense, type ComponentType, type CSSProperties } from "react";
import { t } from "../../i18n";
import { Code, Metric, StatusBadge, Table, Text } from "./components/basic";
import { Action, Input, List, Toggle } from "./components/interactive";
import { LogStream } from "./components/LogStream";
import { Chart } from "./components/Chart";
import { Markdown } from "./components/Markdown";
import { str, type NodeProps, type RenderNode } from "./types";

// The flow editor (xyflow) is heavy: loaded when a Diagram is on screen.
const DiagramLazy = lazy(() => import("./diagram").then((m) => ({ default: m.DiagramView })));

function Diagram(props: NodeProps) {
  return (
    <Suspense fallback={<p className="muted">{t("ws.loading")}</p>}>
      <DiagramLazy {...props} />
    </Suspense>
  );
}

export const REGISTRY: Record<string, ComponentType<NodeProps>> = {
  Metric,
  StatusBadge,
  Action,
  LogStream,
  Text,
  Markdown,
  Table,
  List,
  Input,
  Toggle,
  Chart,
  Code,
  Diagram,
};

function Unknown({ node }: NodeProps) {
  return <p className="muted">{t("ws.unknown", { type: node.type })}</p>;
}

type Ctx = Omit<NodeProps, "node">;

export function RenderNodeView({ node, ...ctx }: { node: RenderNode } & Ctx) {
  if (node.kind === "layout") {
    const title = str(node.props.title);
    const gap = typeof node.props.gap === "number" ? node.props.gap : 12;
    return (
      <section className="n-layout" data-key={node.key} style={{ gap } as CSSProperties}>
        {title && <h3 className="n-layout-title">{title}</h3>}
        {node.children.map((c) => (
          <RenderNodeView key={c.key} node={c} {...ctx} />
        ))}
      </section>
    );
  }
  if (node.kind === "row") {
    return (
      <div className="n-row" data-key={node.key}>
        {node.children.map((c) => (
          <div key={c.key} className="n-cell" style={{ gridColumn: `span ${Math.max(1, Math.min(12, c.span))}` }}>
            <RenderNodeView node={c} {...ctx} />
          </div>
        ))}
      </div>
    );
  }
  const Component = REGISTRY[node.type] ?? Unknown;
  return (
    <div className={`n-comp c-${node.type}`} data-key={node.key} data-type={node.type}>
      <Component node={node} {...ctx} />
    </div>
  );
}
