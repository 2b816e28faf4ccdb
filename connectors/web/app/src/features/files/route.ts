// #/files/<workspace>/<path…>: each segment URI-encoded.
export type FilesRoute = { workspace: string; path: string | null };

export const DEFAULT_WORKSPACE = "default";

export function parseFilesHash(hash: string): FilesRoute {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(safeDecode);
  if (parts[0] !== "files") return { workspace: DEFAULT_WORKSPACE, path: null };
  const workspace = parts[1] || DEFAULT_WORKSPACE;
  const path = parts.slice(2).join("/");
  return { workspace, path: path || null };
}

export function filesHash(workspace: string, path: string | null): string {
  const tail = path ? "/" + path.split("/").map(encodeURIComponent).join("/") : "";
  return `#/files/${encodeURIComponent(workspace)}${tail}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
