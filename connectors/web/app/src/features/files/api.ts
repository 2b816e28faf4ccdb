// The file API of a workspace's git repository (nexflow/web/routes_files.py).
import { api } from "../../api/client";
import type { Reply, RequestOf, Schemas } from "../../api/types";

// The shapes come from the OpenAPI schema (src/api/types.ts).
export type TreeEntry = Schemas["TreeEntry"];
export type FileDoc = Schemas["FileOut"];
export type Commit = Schemas["CommitOut"];

type FileRoute = "/api/v1/workspaces/{ws}/files/{path}";

function base(workspace: string): string {
  return `/api/v1/workspaces/${encodeURIComponent(workspace)}`;
}

/** A path inside the workspace, each segment encoded (slashes kept). */
export function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

export function fetchTree(workspace: string): Promise<TreeEntry[]> {
  return api<Reply<"/api/v1/workspaces/{ws}/tree", "get", TreeEntry[]>>(`${base(workspace)}/tree`);
}

export function fetchFile(workspace: string, path: string): Promise<FileDoc> {
  return api<Reply<FileRoute, "get", FileDoc>>(`${base(workspace)}/files/${encodePath(path)}`);
}

export function saveFile(
  workspace: string,
  path: string,
  content: string,
  baseSha: string | null,
  message?: string,
): Promise<Commit> {
  const body: RequestOf<FileRoute, "put"> = { content };
  if (baseSha) body.base_sha = baseSha;
  if (message) body.message = message;
  return api<Reply<FileRoute, "put", Commit>>(`${base(workspace)}/files/${encodePath(path)}`, {
    method: "PUT",
    body,
  });
}

export function deleteFile(workspace: string, path: string, baseSha: string | null): Promise<Commit> {
  const query = baseSha ? `?base_sha=${encodeURIComponent(baseSha)}` : "";
  return api<Reply<FileRoute, "delete", Commit>>(
    `${base(workspace)}/files/${encodePath(path)}${query}`,
    { method: "DELETE" },
  );
}

export function fetchHistory(workspace: string, path: string): Promise<Commit[]> {
  return api<Reply<"/api/v1/workspaces/{ws}/files/{path}/history", "get", Commit[]>>(
    `${base(workspace)}/files/${encodePath(path)}/history`,
  );
}

type RestoreRoute = "/api/v1/workspaces/{ws}/files/{path}/restore";

export function restoreFile(workspace: string, path: string, sha: string): Promise<Commit> {
  return api<Reply<RestoreRoute, "post", Commit>>(`${base(workspace)}/files/${encodePath(path)}/restore`, {
    method: "POST",
    body: { sha } satisfies RequestOf<RestoreRoute, "post">,
  });
}

/** Panel files are listed and readable; a panel changes through its tools or a patch. */
export function isReadOnly(path: string): boolean {
  return path.startsWith("panels/");
}

export function isNote(path: string): boolean {
  return /\.(md|markdown)$/i.test(path);
}
