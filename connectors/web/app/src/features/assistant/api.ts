// The assistant's HTTP calls and the shapes it reads: conversations
// (GET /api/v1/sessions, ?q= searches their text), one conversation's timeline
// (GET /api/v1/sessions/{id}, see nexflow/web/timeline.py), Stop, confirmations,
// panel buttons and patch decisions.
//
// Every REST shape comes from the OpenAPI schema (src/api/types.ts): a conversation's
// timeline (SessionDetail, nexflow/web/models_chat.py), the Outbound cards inside it and a
// patch decision's answer. Narrow<> only tightens what the server always sends: the
// timeline's optional keys are absent (never null) when an item lacks them, and an
// Outbound's defaulted fields (kind, buttons, summary, url, caption) are always there.
import { api } from "../../api/client";
import type { Narrow, Reply, RequestOf, Schemas } from "../../api/types";

export type SessionItem = Schemas["SessionItem"];

export type Button = Schemas["ButtonSpec"];

/** An Outbound as the gateway sends it (nexflow/bus/events.py), by ``kind``. */
export type Outbound =
  | Narrow<Schemas["TextOut"], { kind: "text" }>
  | Narrow<Schemas["PanelSnapshotOut"], { kind: "panel_snapshot"; buttons: Button[] }>
  | Narrow<Schemas["ConfirmationOut"], { kind: "confirmation" }>
  | Narrow<Schemas["PatchReviewOut"], { kind: "patch_review"; summary: string[]; url: string }>
  | Narrow<Schemas["OutboundFile"], { kind: "file"; caption: string }>;

export type TimelineItem =
  | Narrow<Schemas["UserItem"], { pending?: boolean; status?: string }>
  | Narrow<Schemas["AssistantItem"], { outbox_id?: number }>
  | Narrow<Schemas["ToolCallItem"], { label?: string }>
  | Schemas["ToolResultItem"]
  | Narrow<
      Schemas["CardItem"],
      { status?: string; reason?: string; merge_commit?: string; outbound: Outbound }
    >;

export type SessionDetail = Narrow<Schemas["SessionDetail"], { timeline: TimelineItem[] }>;

/** What a panel card shows: the part of PanelSnapshotOut an Outbound panel_snapshot has too. */
export type PanelSnapshot = Pick<Schemas["PanelSnapshotOut"], "panel_id" | "title" | "text" | "buttons">;

export function listSessions(q: string, limit = 100): Promise<SessionItem[]> {
  const params = new URLSearchParams({ limit: String(limit) });
  if (q.trim()) params.set("q", q.trim());
  return api<Reply<"/api/v1/sessions", "get", SessionItem[]>>(`/api/v1/sessions?${params}`);
}

export function getSession(id: string): Promise<SessionDetail> {
  return api<Reply<"/api/v1/sessions/{session_id}", "get", SessionDetail>>(
    `/api/v1/sessions/${encodeURIComponent(id)}?limit=500`,
  );
}

export function stopSession(id: string): Promise<Schemas["StopResult"]> {
  return api<Reply<"/api/v1/sessions/{session_id}/stop", "post">>(
    `/api/v1/sessions/${encodeURIComponent(id)}/stop`,
    { method: "POST" },
  );
}

type ConfirmationRoute = "/api/v1/confirmations/{confirmation_id}";

export function answerConfirmation(id: string, approve: boolean): Promise<Schemas["ConfirmationAnswered"]> {
  return api<Reply<ConfirmationRoute, "post">>(`/api/v1/confirmations/${encodeURIComponent(id)}`, {
    method: "POST",
    body: { approve } satisfies RequestOf<ConfirmationRoute, "post">,
  });
}

export function panelSnapshot(panelId: string): Promise<PanelSnapshot> {
  return api<Reply<"/api/v1/panels/{panel_id}/snapshot", "get">>(
    `/api/v1/panels/${encodeURIComponent(panelId)}/snapshot`,
  );
}

export function panelWorkspace(panelId: string): Promise<Pick<Schemas["PanelDetail"], "workspace">> {
  return api<Reply<"/api/v1/panels/{panel_id}", "get">>(`/api/v1/panels/${encodeURIComponent(panelId)}`);
}

/** The route reads its body ({action}) itself: the schema declares none. */
export function pressButton(panelId: string, action: string): Promise<Schemas["Pressed"]> {
  return api<Reply<"/api/v1/panels/{panel_id}/press", "post">>(
    `/api/v1/panels/${encodeURIComponent(panelId)}/press`,
    { method: "POST", body: { action } },
  );
}

/** A patch decision's answer: the patch with its new status (reason, merge_commit). */
export type PatchResult = Schemas["PatchOut"];

export function decidePatch(id: string, verb: "accept" | "reject"): Promise<PatchResult> {
  return api<Reply<`/api/v1/patches/{patch_id}/${typeof verb}`, "post">>(
    `/api/v1/patches/${encodeURIComponent(id)}/${verb}`,
    { method: "POST" },
  );
}
