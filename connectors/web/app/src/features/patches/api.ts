// Patch review calls (nexflow/web/routes_patches.py): the list, one patch's diff in the
// reviewer's shapes (nexflow/workspace/diff.py), accept and reject.
// Patch and PatchDiff come from the OpenAPI schema (nexflow/web/models_patches.py), and
// Reply<> ties each call to its route.
import { api } from "../../api/client";
import type { Reply, Schemas } from "../../api/types";

export type Patch = Schemas["PatchOut"];

export type PatchStatus = Patch["status"];

export type PatchDiff = Schemas["PatchDiffOut"];

export function listPatches(status: string): Promise<Patch[]> {
  return api<Reply<"/api/v1/patches", "get", Patch[]>>(
    `/api/v1/patches${status ? `?status=${encodeURIComponent(status)}` : ""}`,
  );
}

export function getPatch(id: string): Promise<PatchDiff> {
  return api<Reply<"/api/v1/patches/{patch_id}", "get", PatchDiff>>(
    `/api/v1/patches/${encodeURIComponent(id)}`,
  );
}

export function decide(id: string, verb: "accept" | "reject"): Promise<Patch> {
  return api<Reply<`/api/v1/patches/{patch_id}/${typeof verb}`, "post", Patch>>(
    `/api/v1/patches/${encodeURIComponent(id)}/${verb}`,
    { method: "POST" },
  );
}
