// The flow editor (loaded on demand): the YAML text is the model. The canvas (@xyflow/react)
// shows the nodes and edges read from it; every canvas edit — a node dropped from the palette
// or added with its button, a connection between typed ports, a deletion, a setting changed in
// the side form — is applied to the parsed `yaml` Document in place and serialised again, so
// comments and order survive. Validation runs live (debounced) on the server's loader; Save
// commits flows/<name>.yaml; Run starts a run and polls its task, colouring node by node.
import {
  Background,
  Controls,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import "./flows.css";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import type { Document } from "yaml";
import { ApiError } from "../../api/client";
import { t, useLocale } from "../../i18n";
import {
  defaultWorkspace,
  flowHistory,
  getTask,
  nodeTypes,
  readFlowFile,
  saveFlow,
  startRun,
  validate,
  type Commit,
  type NodeTypeSpec,
  type Task,
  type Validation,
} from "./api";
import { addNode, connect, disconnect, edit, newFlowText, readGraph, removeNode, setField, type GraphEdge, type PortName } from "./doc";
import { FlowNodeCard, type FlowNodeType } from "./elements";
import { layered, loadPositions, NODE_H, NODE_W, savePositions, type XY } from "./layout";
import { NodeForm } from "./NodeForm";

const nodeTypesMap = { nexflow: FlowNodeCard };
const DRAG_TYPE = "application/x-nexflow-node";
const FINAL = new Set(["completed", "failed", "cancelled"]);
// A new node's first settings: enough to be valid where a sensible value exists.
const SAMPLE: Record<string, Record<string, unknown>> = {
  tool: { tool: "" },
  agent: { prompt: "" },
  condition: { if: "true" },
  transform: { expr: "null" },
  approval: { title: "Continue?" },
  wait: { seconds: 1 },
  flow: { flow: "" },
};

type EdgeType = Edge<{ port: PortName }>;

export interface FlowEditorProps {
  name: string;
  onSaved?: () => void;
}

export function FlowEditor(props: FlowEditorProps) {
  return (
    <ReactFlowProvider>
      <Editor {...props} />
    </ReactFlowProvider>
  );
}

function Editor({ name, onSaved }: FlowEditorProps) {
  const lang = useLocale();
  const flow = useReactFlow<FlowNodeType, EdgeType>();
  const [text, setText] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [workspace, setWorkspace] = useState("default");
  const [types, setTypes] = useState<NodeTypeSpec[]>([]);
  const [loadError, setLoadError] = useState("");
  const [validation, setValidation] = useState<Validation | null>(null);
  // The status line as a key and its values, so it follows a change of language.
  const [status, setStatusKey] = useState<{ key: string; vars?: Record<string, string | number> } | null>(null);
  const say = useCallback((key: string, vars?: Record<string, string | number>) => setStatusKey({ key, vars }), []);
  const [saveErrors, setSaveErrors] = useState<string[]>([]);
  const [commit, setCommit] = useState<Commit | null>(null);
  const [busy, setBusy] = useState(false);
  const [task, setTask] = useState<Task | null>(null);
  const [args, setArgs] = useState("{}");
  const [selected, setSelected] = useState<string | null>(null);
  const positions = useRef<Record<string, XY>>(loadPositions(name));
  const textArea = useRef<HTMLTextAreaElement>(null);

  // Load: the node types, the default workspace, the file (or a new flow's text).
  useEffect(() => {
    let live = true;
    positions.current = loadPositions(name);
    setText(null);
    setTask(null);
    setCommit(null);
    setSelected(null);
    nodeTypes().then((ts) => live && setTypes(ts), () => undefined);
    (async () => {
      const ws = await defaultWorkspace().catch(() => "default");
      if (!live) return;
      setWorkspace(ws);
      try {
        const file = await readFlowFile(ws, name);
        if (!live) return;
        setText(file.content);
        setSaved(file.content);
      } catch (exc) {
        if (!live) return;
        if (exc instanceof ApiError && exc.status === 404) {
          setText(newFlowText(name, t("fl.newComment")));
          setSaved(null);
        } else setLoadError(exc instanceof Error ? exc.message : String(exc));
      }
    })();
    return () => {
      live = false;
    };
  }, [name]);

  const graph = useMemo(() => readGraph(text ?? ""), [text]);
  // Fit the view to the flow once it is shown, unless it starts empty: xyflow would then
  // fit on the first node dropped, and the view would jump under the pointer.
  const fit = useRef<boolean | null>(null);
  if (text !== null && fit.current === null) fit.current = graph.nodes.length > 0;
  const readOnly = graph.syntax.length > 0;
  const specs = useMemo(() => new Map(types.map((s) => [s.type, s])), [types]);

  // Live validation, debounced; an answer for an older text is dropped.
  const latest = useRef(0);
  useEffect(() => {
    if (text === null) return;
    const ticket = ++latest.current;
    const timer = window.setTimeout(() => {
      validate(text, name).then(
        (v) => ticket === latest.current && setValidation(v),
        () => undefined,
      );
    }, 350);
    return () => window.clearTimeout(timer);
  }, [text, name]);

  const problems = useMemo(() => validation?.errors ?? [], [validation]);
  const problemsByNode = useMemo(() => {
    const out = new Map<string, string[]>();
    for (const p of problems) {
      const node = graph.nodes.find((n) => p.line >= n.lines[0] && p.line <= n.lines[1]);
      if (node) out.set(node.id, [...(out.get(node.id) ?? []), `${p.line}:${p.column} ${p.message}`]);
    }
    return out;
  }, [problems, graph]);

  const stages = useMemo(() => new Map((task?.stages ?? []).map((s) => [s.node, s])), [task]);

  // Canvas nodes follow the graph, keeping xyflow's own fields (measured size, selection).
  const [nodes, setNodes] = useState<FlowNodeType[]>([]);
  const [edges, setEdges] = useState<EdgeType[]>([]);
  useEffect(() => {
    const auto = layered(graph.nodes.map((n) => n.id), graph.edges);
    setNodes((prev) => {
      const old = new Map(prev.map((n) => [n.id, n]));
      return graph.nodes.map((g) => {
        const was = old.get(g.id);
        const stage = stages.get(g.id);
        const outputs = (specs.get(g.type)?.outputs.map((p) => p.name) ?? ["out", "error"]) as PortName[];
        return {
          ...(was ?? {}),
          id: g.id,
          type: "nexflow" as const,
          position: positions.current[g.id] ?? auto.get(g.id) ?? { x: 0, y: 0 },
          selected: g.id === selected,
          ariaLabel: [g.id, g.type, stage ? t(`fl.status.${stage.status}`) : ""].filter(Boolean).join(", "),
          data: {
            type: g.type,
            outputs,
            status: stage?.status ?? null,
            tokens: stage ? stage.tokens_in + stage.tokens_out : 0,
            invalid: problemsByNode.has(g.id),
            lang,
          },
        };
      });
    });
    setEdges((prev) => {
      const chosen = new Set(prev.filter((e) => e.selected).map((e) => e.id));
      return graph.edges.map((e) => ({
        id: e.id,
        source: e.source,
        target: e.target,
        sourceHandle: e.port,
        targetHandle: "in",
        label: e.port === "out" ? undefined : t(`fl.portShort.${e.port}`),
        className: `fl-edge fl-edge--${e.port}`,
        selected: chosen.has(e.id),
        data: { port: e.port },
        ariaLabel: t(`fl.edge.${e.port}`, { source: e.source, target: e.target }),
      }));
    });
  }, [graph, specs, stages, problemsByNode, selected, lang]);

  // The latest text, so several edits in one event apply one after the other.
  const current = useRef<string | null>(null);
  current.current = text;
  const change = useCallback(
    (apply: (doc: Document) => void) => {
      if (readOnly || current.current === null) {
        say("fl.fixSyntax");
        return;
      }
      const next = edit(current.current, apply);
      current.current = next;
      setText(next);
    },
    [readOnly],
  );

  const place = (id: string, at: XY) => {
    positions.current = { ...positions.current, [id]: at };
    savePositions(name, positions.current);
  };

  const add = useCallback(
    (type: string, at?: XY) => {
      let made = "";
      change((doc) => {
        made = addNode(doc, type, SAMPLE[type] ?? {});
      });
      if (!made) return;
      // Dropped: where it fell. Added by its button: auto layout, unless nodes were placed by
      // hand, then below the lowest one so it does not land on top of another.
      const placed = nodes.filter((n) => positions.current[n.id]);
      if (!at && placed.length) {
        const left = Math.min(...nodes.map((n) => n.position.x));
        const bottom = Math.max(...nodes.map((n) => n.position.y));
        at = { x: Math.round(left), y: Math.round(bottom + NODE_H + 40) };
      }
      if (at) place(made, at);
      setSelected(made);
      say("fl.added", { node: made });
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [change, name, nodes],
  );

  const onDrop = useCallback(
    (e: DragEvent<HTMLDivElement>) => {
      const type = e.dataTransfer.getData(DRAG_TYPE);
      if (!type) return;
      e.preventDefault();
      const p = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
      add(type, { x: Math.round(p.x - NODE_W / 2), y: Math.round(p.y - NODE_H / 2) });
    },
    [add, flow],
  );

  const onNodesChange = useCallback(
    (changes: NodeChange<FlowNodeType>[]) => {
      const kept = changes.filter((c) => c.type !== "remove");
      for (const c of kept) {
        if (c.type === "position" && c.position) {
          positions.current = { ...positions.current, [c.id]: c.position };
          if (!c.dragging) savePositions(name, positions.current);
        }
        if (c.type === "select") setSelected((s) => (c.selected ? c.id : s === c.id ? null : s));
      }
      setNodes((prev) => applyNodeChanges(kept, prev));
    },
    [name],
  );
  const onEdgesChange = useCallback((changes: EdgeChange<EdgeType>[]) => {
    setEdges((prev) => applyEdgeChanges(changes.filter((c) => c.type !== "remove"), prev));
  }, []);

  const onConnect = useCallback(
    (c: Connection) => {
      if (!c.source || !c.target || c.source === c.target) return;
      const port = (c.sourceHandle ?? "out") as PortName;
      change((doc) => connect(doc, c.source, port, c.target));
      say(`fl.edge.${port}`, { source: c.source, target: c.target });
    },
    [change],
  );

  const remove = useCallback(
    (nodeIds: string[], edgeList: GraphEdge[]) => {
      change((doc) => {
        for (const e of edgeList) disconnect(doc, e);
        for (const id of nodeIds) removeNode(doc, id);
      });
      if (selected && nodeIds.includes(selected)) setSelected(null);
    },
    [change, selected],
  );

  // Save: validate and commit on the server; then show the file's newest commit.
  const save = useCallback(async (): Promise<boolean> => {
    if (text === null) return false;
    setBusy(true);
    setSaveErrors([]);
    say("fl.saving");
    try {
      await saveFlow(name, text);
      setSaved(text);
      const history = await flowHistory(workspace, name).catch(() => []);
      setCommit(history[0] ?? null);
      if (history[0]) say("fl.savedCommit", { sha: history[0].sha.slice(0, 8) });
      else say("fl.saved");
      onSaved?.();
      return true;
    } catch (exc) {
      const body = exc instanceof ApiError ? (exc.body as { errors?: string[] } | null) : null;
      setSaveErrors(body?.errors ?? []);
      say("fl.saveFailed", { message: exc instanceof Error ? exc.message : String(exc) });
      return false;
    } finally {
      setBusy(false);
    }
  }, [name, text, workspace, onSaved]);

  // Run: save first when the text changed, start, poll the task every 500 ms until it ends.
  const polling = useRef<number | null>(null);
  useEffect(() => () => void (polling.current && window.clearTimeout(polling.current)), []);
  const run = useCallback(async () => {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(args || "{}") as Record<string, unknown>;
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("object");
    } catch {
      say("fl.badArgs");
      return;
    }
    if (text !== saved && !(await save())) return;
    setBusy(true);
    try {
      const started = await startRun(name, parsed);
      say("fl.runStarted", { id: started.id });
      const poll = async () => {
        try {
          const now = await getTask(started.id);
          setTask(now);
          if (FINAL.has(now.status)) {
            say(`fl.run.${now.status}`, { id: started.id });
            setBusy(false);
            return;
          }
        } catch {
          /* a blip: try again */
        }
        polling.current = window.setTimeout(poll, 500);
      };
      await poll();
    } catch (exc) {
      setBusy(false);
      say("fl.runFailed", { message: exc instanceof Error ? exc.message : String(exc) });
    }
  }, [args, name, save, saved, text]);

  const jumpTo = (line: number) => {
    const area = textArea.current;
    if (!area || text === null) return;
    const lines = text.split("\n");
    const start = lines.slice(0, Math.max(0, line - 1)).reduce((n, l) => n + l.length + 1, 0);
    area.focus();
    area.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
  };

  if (loadError) return <p role="alert">{t("fl.loadFailed", { message: loadError })}</p>;
  if (text === null) return <p className="fl-muted">{t("fl.loading")}</p>;

  const node = graph.nodes.find((n) => n.id === selected);
  const dirty = text !== saved;
  const allProblems = [...graph.syntax, ...problems];
  return (
    <div className="fl-editor">
      <div className="fl-toolbar" role="toolbar" aria-label={t("fl.toolbar")}>
        <h2 className="fl-title">{name}</h2>
        <span className={`fl-badge ${allProblems.length ? "is-bad" : "is-ok"}`} data-testid="fl-validity">
          {validation === null && !graph.syntax.length ? t("fl.checking") : allProblems.length ? t("fl.problems", { count: allProblems.length }) : t("fl.valid")}
        </span>
        <span className="fl-muted">{dirty ? t("fl.unsaved") : t("fl.upToDate")}</span>
        <button type="button" className="fl-primary" onClick={() => void save()} disabled={busy}>
          {t("fl.save")}
        </button>
        <label htmlFor="fl-args">{t("fl.args")}</label>
        <input id="fl-args" className="fl-mono fl-args" value={args} onChange={(e) => setArgs(e.target.value)} />
        <button type="button" onClick={() => void run()} disabled={busy || allProblems.length > 0}>
          {t("fl.run")}
        </button>
      </div>
      <p className="fl-status" role="status" aria-live="polite" data-testid="fl-status">
        {status ? t(status.key, status.vars) : ""}
      </p>
      {commit && (
        <p className="fl-commit" data-testid="fl-commit">
          {t("fl.commit", { sha: commit.sha.slice(0, 8), message: commit.message })}{" "}
          <a href={`#/files/${encodeURIComponent(workspace)}/flows/${encodeURIComponent(name)}.yaml`}>{t("fl.openFile")}</a>
        </p>
      )}
      {task && (
        <p className="fl-run" data-testid="fl-run" data-status={task.status}>
          {t("fl.runSummary", {
            id: task.id,
            status: t(`fl.status.${task.status}`),
            progress: task.progress,
            in: task.tokens_in,
            out: task.tokens_out,
          })}
          {task.error ? ` — ${task.error}` : ""}
        </p>
      )}
      <div className="fl-body">
        <aside className="fl-palette" aria-labelledby="fl-palette-title">
          <h3 id="fl-palette-title">{t("fl.palette")}</h3>
          <p className="fl-muted fl-hint">{t("fl.paletteHint")}</p>
          <ul>
            {types.map((s) => (
              <li key={s.type}>
                <span
                  className="fl-chip"
                  draggable={!readOnly}
                  data-node-type={s.type}
                  title={s.description}
                  onDragStart={(e) => {
                    e.dataTransfer.setData(DRAG_TYPE, s.type);
                    e.dataTransfer.effectAllowed = "move";
                  }}
                >
                  {s.type}
                </span>
                <button type="button" className="fl-small" disabled={readOnly} aria-label={t("fl.addType", { type: s.type })} onClick={() => add(s.type)}>
                  {t("fl.add")}
                </button>
              </li>
            ))}
          </ul>
        </aside>
        <div
          className="fl-canvas"
          role="group"
          aria-label={t("fl.canvas")}
        >
          <ReactFlow<FlowNodeType, EdgeType>
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypesMap}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={onConnect}
            onDragOver={(e) => {
              if (e.dataTransfer.types.includes(DRAG_TYPE)) {
                e.preventDefault();
                e.dataTransfer.dropEffect = "move";
              }
            }}
            onDrop={onDrop}
            isValidConnection={(c) => c.targetHandle === "in" && c.source !== c.target}
            onDelete={({ nodes: ns, edges: es }) =>
              remove(
                ns.map((n) => n.id),
                es.map((e) => graph.edges.find((g) => g.id === e.id)).filter((e): e is GraphEdge => !!e),
              )
            }
            nodesConnectable={!readOnly}
            deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
            fitView={fit.current === true}
            fitViewOptions={{ padding: 0.2, maxZoom: 1 }}
            minZoom={0.2}
            proOptions={{ hideAttribution: true }}
            ariaLabelConfig={{
              "node.a11yDescription.default": t("fl.a11y.node"),
              "node.a11yDescription.keyboardDisabled": t("fl.a11y.node"),
              "edge.a11yDescription.default": t("fl.a11y.edge"),
              "controls.ariaLabel": t("fl.controls"),
              "controls.zoomIn.ariaLabel": t("fl.zoomIn"),
              "controls.zoomOut.ariaLabel": t("fl.zoomOut"),
              "controls.fitView.ariaLabel": t("fl.fit"),
              "controls.interactive.ariaLabel": t("fl.lock"),
              "handle.ariaLabel": t("fl.handle"),
            }}
          >
            <Background gap={20} />
            <Controls showInteractive={false} />
          </ReactFlow>
          {graph.nodes.length === 0 && <p className="fl-empty">{t("fl.empty")}</p>}
        </div>
        <aside className="fl-side" aria-label={t("fl.side")}>
          {node ? (
            <NodeForm
              node={node}
              spec={specs.get(node.type)}
              ids={graph.nodes.map((n) => n.id)}
              edges={graph.edges}
              stage={stages.get(node.id)}
              problems={problemsByNode.get(node.id) ?? []}
              readOnly={readOnly}
              onField={(key, value) => change((doc) => setField(doc, node.id, key, value))}
              onConnect={(port, target) => change((doc) => connect(doc, node.id, port, target))}
              onDisconnect={(e) => remove([], [e])}
              onDelete={() => remove([node.id], [])}
            />
          ) : (
            <>
              <p className="fl-muted">{t("fl.selectHint")}</p>
              {graph.nodes.length > 0 && (
                <ul className="fl-node-list" aria-label={t("fl.nodes")}>
                  {graph.nodes.map((n) => (
                    <li key={n.id}>
                      <button type="button" className="fl-small" onClick={() => setSelected(n.id)}>
                        {t("fl.selectNode", { node: n.id })}
                      </button>
                      {stages.get(n.id) && <span className="fl-muted"> {t(`fl.status.${stages.get(n.id)!.status}`)}</span>}
                    </li>
                  ))}
                </ul>
              )}
            </>
          )}
          {node && (
            <button type="button" className="fl-small" onClick={() => setSelected(null)}>
              {t("fl.deselect")}
            </button>
          )}
        </aside>
      </div>
      <div className="fl-bottom">
        <section className="fl-problems" aria-labelledby="fl-problems-title">
          <h3 id="fl-problems-title">{t("fl.validation")}</h3>
          {allProblems.length === 0 && saveErrors.length === 0 ? (
            <p className="fl-muted">{validation ? t("fl.noProblems") : t("fl.checking")}</p>
          ) : (
            <ul data-testid="fl-problems">
              {allProblems.map((p, i) => (
                <li key={`${i}:${p.line}:${p.column}`}>
                  <button type="button" className="fl-link" onClick={() => jumpTo(p.line)}>
                    {t("fl.at", { line: p.line, column: p.column })}
                  </button>{" "}
                  {p.message}
                </li>
              ))}
              {saveErrors.map((e) => (
                <li key={e}>{e}</li>
              ))}
            </ul>
          )}
        </section>
        <section className="fl-yaml">
          <label htmlFor="fl-yaml-text">{t("fl.yaml", { path: `flows/${name}.yaml` })}</label>
          <textarea
            id="fl-yaml-text"
            ref={textArea}
            className="fl-mono"
            spellCheck={false}
            value={text}
            onChange={(e) => setText(e.target.value)}
            onKeyDown={(e) => {
              if ((e.ctrlKey || e.metaKey) && e.key === "s") {
                e.preventDefault();
                void save();
              }
            }}
          />
        </section>
      </div>
    </div>
  );
}

export default FlowEditor;
