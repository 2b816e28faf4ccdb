// The flow's YAML text is the model. These functions read the graph out of it and apply
// one canvas edit at a time to a parsed `yaml` Document in place, then serialise it again,
// so comments, key order and the style of untouched nodes survive (docs/graphstudio/flows.md).
import { isMap, isScalar, isSeq, parseDocument, Scalar, YAMLMap, YAMLSeq, type Document } from "yaml";

export type PortName = "out" | "then" | "else" | "error";

export interface GraphNode {
  id: string;
  type: string;
  /** The node's settings as plain data (edges included). */
  data: Record<string, unknown>;
  /** First and last line (1-based) of the node's text, to mark validation errors. */
  lines: [number, number];
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  port: PortName;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** YAML syntax errors: the canvas is read-only until the text parses. */
  syntax: { line: number; column: number; message: string }[];
}

const SERIALISE = { lineWidth: 0, flowCollectionPadding: false } as const;

export function parse(text: string): Document.Parsed {
  return parseDocument(text, { keepSourceTokens: false });
}

export function serialise(doc: Document): string {
  return doc.toString(SERIALISE);
}

function lineOf(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  return starts;
}

export function edgeId(source: string, port: PortName, target: string): string {
  return `${source}:${port}->${target}`;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

/** The nodes and edges of a flow's text (whatever part of it parses). */
export function readGraph(text: string): Graph {
  const doc = parse(text);
  const syntax = doc.errors.map((e) => ({
    line: e.linePos?.[0].line ?? 0,
    column: e.linePos?.[0].col ?? 0,
    message: e.message.split("\n")[0],
  }));
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const map = doc.get("nodes", true);
  if (!isMap(map)) return { nodes, edges, syntax };
  const starts = lineStarts(text);
  for (const pair of map.items) {
    const id = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const value = pair.value;
    const data = (isMap(value) ? value.toJSON() : {}) as Record<string, unknown>;
    const keyRange = isScalar(pair.key) ? pair.key.range : undefined;
    const valueRange = value && (isMap(value) || isScalar(value) || isSeq(value)) ? value.range : undefined;
    const first = keyRange ? lineOf(starts, keyRange[0]) : 0;
    const last = valueRange ? lineOf(starts, Math.max(valueRange[0], valueRange[1] - 1)) : first;
    nodes.push({ id, type: typeof data.type === "string" ? data.type : "?", data, lines: [first, last] });
  }
  const ids = new Set(nodes.map((n) => n.id));
  for (const n of nodes) {
    for (const need of strings(n.data.needs)) {
      if (ids.has(need)) edges.push({ id: edgeId(need, "out", n.id), source: need, target: n.id, port: "out" });
    }
    for (const port of ["then", "else"] as const) {
      for (const t of strings(n.data[port])) {
        if (ids.has(t)) edges.push({ id: edgeId(n.id, port, t), source: n.id, target: t, port });
      }
    }
    const onError = n.data.on_error;
    if (typeof onError === "string" && ids.has(onError)) {
      edges.push({ id: edgeId(n.id, "error", onError), source: n.id, target: onError, port: "error" });
    }
  }
  return { nodes, edges, syntax };
}

/** The `nodes:` mapping, created (block style) when missing or empty. */
function nodesMap(doc: Document): YAMLMap {
  const found = doc.get("nodes", true);
  if (isMap(found)) {
    if (found.items.length === 0) found.flow = false;
    return found;
  }
  const map = new YAMLMap();
  doc.set("nodes", map);
  return map;
}

function nodeMap(doc: Document, id: string): YAMLMap | null {
  const map = doc.get("nodes", true);
  if (!isMap(map)) return null;
  const node = map.get(id, true);
  return isMap(node) ? node : null;
}

/** A fresh id for a node of ``type``: transform_1, transform_2, … */
export function freshId(type: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  for (let i = 1; ; i++) {
    const id = `${type}_${i}`;
    if (!used.has(id)) return id;
  }
}

/** Add a node with ``settings`` (plain data) at the end of `nodes:`; answers its id. */
export function addNode(doc: Document, type: string, settings: Record<string, unknown>): string {
  const map = nodesMap(doc);
  const taken = map.items.map((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)));
  const id = freshId(type, taken);
  const node = doc.createNode({ type, ...settings }) as YAMLMap;
  node.flow = false;
  map.set(id, node);
  return id;
}

function appendTo(doc: Document, node: YAMLMap, key: string, value: string): void {
  const seq = node.get(key, true);
  if (isSeq(seq)) {
    if (!seq.items.some((i) => (isScalar(i) ? i.value : i) === value)) seq.add(doc.createNode(value));
    return;
  }
  const fresh = new YAMLSeq();
  fresh.flow = true;
  fresh.add(doc.createNode(value));
  node.set(key, fresh);
}

function removeFrom(node: YAMLMap, key: string, value: string): void {
  const seq = node.get(key, true);
  if (!isSeq(seq)) return;
  seq.items = seq.items.filter((i) => (isScalar(i) ? i.value : i) !== value);
  if (seq.items.length === 0) node.delete(key);
}

/** Connect ``source``'s ``port`` to ``target``: the edge becomes the YAML field it stands for
 * (out → target's `needs`, then/else → source's branch lists, error → source's `on_error`). */
export function connect(doc: Document, source: string, port: PortName, target: string): boolean {
  if (source === target) return false;
  const from = nodeMap(doc, source);
  const to = nodeMap(doc, target);
  if (!from || !to) return false;
  if (port === "out") appendTo(doc, to, "needs", source);
  else if (port === "error") setScalar(doc, from, "on_error", target);
  else appendTo(doc, from, port, target);
  return true;
}

export function disconnect(doc: Document, edge: Pick<GraphEdge, "source" | "target" | "port">): void {
  const from = nodeMap(doc, edge.source);
  const to = nodeMap(doc, edge.target);
  if (edge.port === "out" && to) removeFrom(to, "needs", edge.source);
  else if (edge.port === "error" && from) {
    if (from.get("on_error") === edge.target) from.delete("on_error");
  } else if (from) removeFrom(from, edge.port, edge.target);
}

/** Remove a node and every reference to it. */
export function removeNode(doc: Document, id: string): void {
  const map = doc.get("nodes", true);
  if (!isMap(map)) return;
  map.delete(id);
  for (const pair of map.items) {
    if (!isMap(pair.value)) continue;
    for (const key of ["needs", "then", "else"]) removeFrom(pair.value, key, id);
    if (pair.value.get("on_error") === id) pair.value.delete("on_error");
  }
}

function setScalar(doc: Document, node: YAMLMap, key: string, value: unknown): void {
  const current = node.get(key, true);
  if (isScalar(current) && (value === null || typeof value !== "object")) {
    (current as Scalar).value = value; // keeps its comment
    if (typeof value === "string" && current.type && current.type !== "PLAIN") return;
    if (typeof value === "string") current.type = undefined;
    return;
  }
  const created = doc.createNode(value);
  if (isMap(created) || isSeq(created)) created.flow = true;
  node.set(key, created);
}

/** Set (or, with ``undefined``, remove) one setting of a node. */
export function setField(doc: Document, id: string, key: string, value: unknown): void {
  const node = nodeMap(doc, id);
  if (!node) return;
  if (value === undefined) node.delete(key);
  else setScalar(doc, node, key, value);
}

/** Apply ``edit`` to a fresh parse of ``text`` and answer the new text. */
export function edit(text: string, change: (doc: Document) => void): string {
  const doc = parse(text);
  change(doc);
  return serialise(doc);
}

/** A new flow's text. */
export function newFlowText(name: string, comment: string): string {
  return `# ${comment}\nname: ${name}\ndescription: ""\nnodes: {}\n`;
}
