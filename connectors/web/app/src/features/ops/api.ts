// The ops views' calls to the gateway, with the JSON shapes the routes answer
// (nexflow/web/routes_dashboard.py, routes_settings.py and the existing routes).
import { api } from "../../api/client";
import type { Reply, RequestOf, Schemas } from "../../api/types";

// The shapes come from the OpenAPI schema (src/api/types.ts).
export type Queues = Schemas["QueueSummary"];
export type DayModel = Schemas["UsageDayModel"];
export type Usage = Schemas["UsageByDay"];
export type DeadLetter = Schemas["DeadLetterOut"];
export type Skill = Schemas["SkillSummary"];
export type Pairing = Schemas["PairingOut"];
export type Session = Schemas["SessionItem"];
export type Task = Schemas["TaskSummaryOut"];
export type Reminder = Schemas["ReminderOut"];
export type UserRow = Schemas["UserOut"];
export type Users = Schemas["UserList"];
export type MarketEntry = Schemas["MarketEntry"];
export type Marketplace = Schemas["Marketplace"];
export type Review = Schemas["Review"];
export type Settings = Schemas["Settings"];
export type SettingsSaved = Schemas["SettingsSaved"];
/** One problem of a 422 invalid_config answer (InvalidConfig.problems). */
export type Problem = Schemas["ConfigProblemOut"];

export type Status = Schemas["GatewayStatus"];

const q = (all: boolean) => (all ? "?all=true" : "");

type InstallRoute = "/api/v1/marketplace/{kind}/{slug}/install";

export const ops = {
  status: () => api<Reply<"/api/v1/status", "get", Status>>("/api/v1/status"),
  queues: (all: boolean) =>
    api<Reply<"/api/v1/dashboard/queues", "get", Queues>>(`/api/v1/dashboard/queues${q(all)}`),
  usage: (all: boolean, days = 14) =>
    api<Reply<"/api/v1/dashboard/usage", "get", Usage>>(
      `/api/v1/dashboard/usage?days=${days}${all ? "&all=true" : ""}`,
    ),
  deadLetters: (all: boolean) =>
    api<Reply<"/api/v1/dead-letters", "get", DeadLetter[]>>(`/api/v1/dead-letters${q(all)}`),
  retry: (id: number) =>
    api<Reply<"/api/v1/dead-letters/{inbox_id}/retry", "post">>(`/api/v1/dead-letters/${id}/retry`, {
      method: "POST",
    }),
  skills: () => api<Reply<"/api/v1/skills", "get", Skill[]>>("/api/v1/skills"),
  pairing: () => api<Reply<"/api/v1/pairing", "get", Pairing[]>>("/api/v1/pairing"),
  decide: (p: Pairing, decision: "approve" | "deny") =>
    api<Reply<"/api/v1/pairing/{channel}/{code}/{decision}", "post">>(
      `/api/v1/pairing/${encodeURIComponent(p.channel)}/${encodeURIComponent(p.code)}/${decision}`,
      { method: "POST" },
    ),
  sessions: () => api<Reply<"/api/v1/sessions", "get", Session[]>>("/api/v1/sessions?limit=20"),
  tasks: () => api<Reply<"/api/v1/tasks", "get">>("/api/v1/tasks"),
  reminders: () => api<Reply<"/api/v1/reminders", "get">>("/api/v1/reminders"),
  cancelReminder: (id: string) =>
    api<Reply<"/api/v1/reminders/{reminder_id}", "delete">>(
      `/api/v1/reminders/${encodeURIComponent(id)}`,
      { method: "DELETE" },
    ),
  users: () => api<Reply<"/api/v1/users", "get", Users>>("/api/v1/users"),
  marketplace: () => api<Reply<"/api/v1/marketplace", "get", Marketplace>>("/api/v1/marketplace"),
  review: (kind: string, slug: string) =>
    api<Reply<"/api/v1/marketplace/{kind}/{slug}", "get", Review>>(
      `/api/v1/marketplace/${kind}/${encodeURIComponent(slug)}`,
    ),
  install: (kind: string, slug: string, approve: boolean) =>
    api<Reply<InstallRoute, "post">>(`/api/v1/marketplace/${kind}/${encodeURIComponent(slug)}/install`, {
      method: "POST",
      body: { approve_findings: approve } satisfies RequestOf<InstallRoute, "post">,
    }),
  settings: () => api<Reply<"/api/v1/settings", "get", Settings>>("/api/v1/settings"),
  saveSettings: (changes: Record<string, unknown>) =>
    api<Reply<"/api/v1/settings", "put", SettingsSaved>>("/api/v1/settings", {
      method: "PUT",
      body: { changes } satisfies RequestOf<"/api/v1/settings", "put">,
    }),
};
