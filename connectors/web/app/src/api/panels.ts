// Typed helpers for the panel, workspace and layout endpoints (docs/panels.md,
// docs/graphstudio/workspace.md). The render tree mirrors nexflow/panels/render.py.
import { api, ApiError } from "./client";
import type { Json, Jsonify, Narrow, Reply, RequestOf, Schemas } from "./types";

export type { Json };

// The shapes come from the OpenAPI schema (./types.ts); JsonValue is read as Json, and the
// fields pydantic always sends (defaults) though the schema marks them optional are narrowed.
export type PanelSummary = Jsonify<Schemas["PanelSummary"]>;

export type RenderTrigger = Narrow<Jsonify<Schemas["RenderTrigger"]>, { args: Record<string, Json> }>;

export interface RenderNode
  extends Narrow<
    Jsonify<Schemas["RenderNode"]>,
    { props: Record<string, Json>; trigger: RenderTrigger | null; children: RenderNode[] }
  > {}

export type RenderTree = Narrow<Jsonify<Schemas["RenderTree"]>, { root: RenderNode }>;

export type PanelDetail = Narrow<Jsonify<Schemas["PanelDetail"]>, { render: RenderTree }>;

export type Effect = ToolOutcome["effects"][number];

/** Each entry of ``flows`` carries a ``message`` (nexflow/panels/runtime/flows.py); the
 * schema types the entries as free dicts. */
export type ToolOutcome = Narrow<Jsonify<Schemas["ToolOutcome"]>, { flows: { message: string }[] }>;

export type Area = Narrow<Schemas["Area"], { panels: string[]; active: string | null }>;

export type Layout = Narrow<Schemas["Layout"], { areas: Area[] }>;

export type WorkspaceInfo = Schemas["WorkspaceOut"];

const enc = encodeURIComponent;

export const listTemplates = () =>
  api<Reply<"/api/v1/panel-templates", "get">>("/api/v1/panel-templates");
export const listPanels = () => api<Reply<"/api/v1/panels", "get", PanelSummary[]>>("/api/v1/panels");
export const getPanel = (id: string) =>
  api<Reply<"/api/v1/panels/{panel_id}", "get", PanelDetail>>(`/api/v1/panels/${enc(id)}`);
// 204: no body.
export const deletePanel = (id: string) =>
  api<null>(`/api/v1/panels/${enc(id)}`, { method: "DELETE" });
export const createPanel = (template: string, workspace: string) =>
  // POST /api/v1/panels reads its body itself: the schema declares none.
  api<Reply<"/api/v1/panels", "post", PanelSummary>>("/api/v1/panels", {
    method: "POST",
    body: { template, workspace },
  });

/** Run a Logic tool. A refusal (ok: false, or an HTTP error) comes back as an outcome. */
export async function callTool(
  id: string,
  tool: string,
  args: Record<string, Json>,
): Promise<ToolOutcome> {
  try {
    // The route reads its body (the arguments) itself: the schema declares none.
    return await api<Reply<"/api/v1/panels/{panel_id}/tools/{tool}", "post", ToolOutcome>>(
      `/api/v1/panels/${enc(id)}/tools/${enc(tool)}`,
      { method: "POST", body: args },
    );
  } catch (err) {
    const e = err instanceof ApiError ? err : null;
    const body = e?.body as Partial<ToolOutcome> | null | undefined;
    return {
      ok: false,
      panel: id,
      tool,
      state: {},
      effects: [],
      version: 0,
      flows: [],
      logs: [],
      result: null,
      error: body?.error ?? { code: e?.code ?? "network", message: e?.message ?? String(err) },
    };
  }
}

export const listWorkspaces = () =>
  api<Reply<"/api/v1/workspaces", "get", WorkspaceInfo[]>>("/api/v1/workspaces");
export const createWorkspace = (name: string) =>
  api<Reply<"/api/v1/workspaces", "post", WorkspaceInfo>>("/api/v1/workspaces", {
    method: "POST",
    body: { name } satisfies RequestOf<"/api/v1/workspaces", "post">,
  });
type LayoutRoute = "/api/v1/workspaces/{workspace}/layout";
export const getLayout = (ws: string) =>
  api<Reply<LayoutRoute, "get", Layout>>(`/api/v1/workspaces/${enc(ws)}/layout`);
export const putLayout = (ws: string, layout: Layout) =>
  api<Reply<LayoutRoute, "put", Layout>>(`/api/v1/workspaces/${enc(ws)}/layout`, {
    method: "PUT",
    body: layout satisfies RequestOf<LayoutRoute, "put">,
  });
