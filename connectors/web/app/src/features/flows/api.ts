// The flows API (nexflow/web/routes_flows.py, routes_tasks.py, routes_flow_editor.py) and
// the workspace file API for the flow's text and its commits.
import { api } from "../../api/client";
import type { Reply, RequestOf, Schemas } from "../../api/types";

export type FlowSummary = Schemas["FlowOut"];
export type NodeTypeSpec = Schemas["NodeTypeSpec"];
export type FieldSpec = Schemas["FieldSpec"];
export type Validation = Schemas["Validation"];
export type Task = Schemas["TaskOut"];
export type Stage = Schemas["StageOut"];
export type Commit = Schemas["CommitOut"];
export type FileDoc = Schemas["FileOut"];

export function listFlows(): Promise<FlowSummary[]> {
  return api<Reply<"/api/v1/flows", "get", FlowSummary[]>>("/api/v1/flows");
}

export function nodeTypes(): Promise<NodeTypeSpec[]> {
  return api<Reply<"/api/v1/flows/node-types", "get", NodeTypeSpec[]>>("/api/v1/flows/node-types");
}

export function validate(yaml: string, name: string): Promise<Validation> {
  return api<Reply<"/api/v1/flows/validate", "post", Validation>>("/api/v1/flows/validate", {
    method: "POST",
    body: { yaml, name } satisfies RequestOf<"/api/v1/flows/validate", "post">,
  });
}

export function saveFlow(name: string, yaml: string): Promise<FlowSummary> {
  return api<Reply<"/api/v1/flows", "post", FlowSummary>>("/api/v1/flows", {
    method: "POST",
    body: { name, yaml } satisfies RequestOf<"/api/v1/flows", "post">,
  });
}

export function startRun(name: string, args: Record<string, unknown>): Promise<Schemas["RunStarted"]> {
  return api<Reply<"/api/v1/flows/{name}/runs", "post">>(`/api/v1/flows/${encodeURIComponent(name)}/runs`, {
    method: "POST",
    body: { args, priority: 3 },
  });
}

export function getTask(id: string): Promise<Task> {
  return api<Reply<"/api/v1/tasks/{task_id}", "get", Task>>(`/api/v1/tasks/${encodeURIComponent(id)}`);
}

export async function defaultWorkspace(): Promise<string> {
  const list = await api<Reply<"/api/v1/workspaces", "get">>("/api/v1/workspaces");
  return list.find((w) => w.default)?.name ?? "default";
}

function filePath(ws: string, name: string): string {
  return `/api/v1/workspaces/${encodeURIComponent(ws)}/files/flows/${encodeURIComponent(name)}.yaml`;
}

export function readFlowFile(ws: string, name: string): Promise<FileDoc> {
  return api<Reply<"/api/v1/workspaces/{ws}/files/{path}", "get", FileDoc>>(filePath(ws, name));
}

export function flowHistory(ws: string, name: string): Promise<Commit[]> {
  return api<Reply<"/api/v1/workspaces/{ws}/files/{path}/history", "get", Commit[]>>(`${filePath(ws, name)}/history`);
}
