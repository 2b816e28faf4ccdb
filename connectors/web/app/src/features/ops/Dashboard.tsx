// #/dashboard: live logs, queues and dead letters, usage and cost charts, tasks, skills,
// sessions and pairing requests.
import { useState } from "react";
import { t, useLocale } from "../../i18n";
import { ops, type Pairing, type Reminder, type Skill } from "./api";
import { CostPerModel, TokensPerDay } from "./Charts";
import { Card, ErrorNote, Loading, named } from "./common";
import { num, usd, when } from "./format";
import { LogStream } from "./LogStream";
import { useLoad } from "./useLoad";
import "./ops.css";

const POLL_MS = 15_000; // queues, dead letters, tasks and pairing requests refresh this often

export function DashboardView() {
  useLocale();
  const status = useLoad(ops.status);
  const owner = status.data?.caller.role === "owner";
  const [all, setAll] = useState(false);
  return (
    <div className="ops-view">
      <div className="ops-head">
        <h2>{t("ops.dashboard.title")}</h2>
        {owner && (
          <label className="ops-check">
            <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} />
            {t("ops.everyone")}
          </label>
        )}
      </div>
      <div className="ops-grid">
        <Card title={t("ops.logs.title")} id="ops-logs" wide>
          {status.data && !owner ? <p className="ops-muted">{t("ops.logs.ownerOnly")}</p> : <LogStream />}
        </Card>
        <QueuesCard all={all} />
        <TasksCard />
        <RemindersCard />
        <SessionsCard />
        {owner && <PairingCard />}
        <UsageCard all={all} />
        <SkillsCard owner={owner} />
      </div>
    </div>
  );
}

function QueuesCard({ all }: { all: boolean }) {
  const queues = useLoad(() => ops.queues(all), [all], POLL_MS);
  const dead = useLoad(() => ops.deadLetters(all), [all], POLL_MS);
  const [busy, setBusy] = useState<number | null>(null);
  const [err, setErr] = useState<Error | null>(null);
  const retry = async (id: number) => {
    setBusy(id);
    setErr(null);
    try {
      await ops.retry(id);
      dead.reload();
      queues.reload();
    } catch (e) {
      setErr(e as Error);
    } finally {
      setBusy(null);
    }
  };
  const q = queues.data;
  return (
    <Card
      title={t("ops.queues.title")}
      id="ops-queues"
      actions={
        <button type="button" onClick={() => (queues.reload(), dead.reload())}>
          {t("ops.refresh")}
        </button>
      }
    >
      <ErrorNote error={queues.error ?? err} />
      <Loading loading={queues.loading && !queues.data} />
      {q && (
        <dl className="ops-kv">
          {(["inbox", "outbox"] as const).map((box) => (
            <div key={box}>
              <dt>{t(`ops.queues.${box}`)}</dt>
              <dd>
                {Object.keys(q[box]).length === 0
                  ? t("ops.queues.empty")
                  : Object.entries(q[box])
                      .map(([s, n]) => `${named("ops.status", s)}: ${num(n)}`)
                      .join(", ")}
              </dd>
            </div>
          ))}
          <div>
            <dt>{t("ops.queues.depth")}</dt>
            <dd>{num(q.queue_depth)}</dd>
          </div>
          <div>
            <dt>{t("ops.queues.approvals")}</dt>
            <dd>{num(q.pending_approvals)}</dd>
          </div>
        </dl>
      )}
      <h4>{t("ops.dead.count", { count: dead.data?.length ?? 0, n: num(dead.data?.length ?? 0) })}</h4>
      <ErrorNote error={dead.error} />
      <ul className="ops-list">
        {dead.data?.map((d) => (
          <li key={d.id}>
            <div>
              <strong>#{d.id}</strong> {d.channel} · {when(d.updated_at)}
              <p className="ops-clip">{d.message}</p>
              <p className="ops-muted">{d.error}</p>
            </div>
            <button
              type="button"
              disabled={busy === d.id}
              onClick={() => retry(d.id)}
              aria-label={t("ops.dead.retryOne", { id: d.id })}
            >
              {t("ops.dead.retry")}
            </button>
          </li>
        ))}
      </ul>
    </Card>
  );
}

function UsageCard({ all }: { all: boolean }) {
  const [days, setDays] = useState(14);
  const usage = useLoad(() => ops.usage(all, days), [all, days]);
  const u = usage.data;
  const calls = u ? u.rows.reduce((s, r) => s + r.calls, 0) : 0;
  const cost = u ? u.rows.reduce((s, r) => s + r.cost_usd, 0) : 0;
  return (
    <Card
      title={t("ops.usage.title")}
      id="ops-usage"
      wide
      actions={
        <label>
          {t("ops.usage.days")}
          <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {[7, 14, 30, 90].map((d) => (
              <option key={d} value={d}>
                {t("ops.days", { count: d, n: num(d) })}
              </option>
            ))}
          </select>
        </label>
      }
    >
      <ErrorNote error={usage.error} />
      <Loading loading={usage.loading && !u} />
      {u && (
        <>
          <p>
            {t("ops.calls", { count: calls, n: num(calls) })} · {usd(cost)}
          </p>
          {u.rows.length === 0 ? (
            <p className="ops-muted">{t("ops.usage.none")}</p>
          ) : (
            <div className="ops-charts">
              <div>
                <h4>{t("ops.usage.tokensPerDay")}</h4>
                <TokensPerDay rows={u.rows} firstDay={u.first_day} days={u.days} />
              </div>
              <div>
                <h4>{t("ops.usage.costPerModel")}</h4>
                <CostPerModel rows={u.rows} />
              </div>
            </div>
          )}
        </>
      )}
    </Card>
  );
}

function TasksCard() {
  const tasks = useLoad(ops.tasks, [], POLL_MS);
  return (
    <Card title={t("ops.tasks.title")} id="ops-tasks">
      <ErrorNote error={tasks.error} />
      <Loading loading={tasks.loading && !tasks.data} />
      {tasks.data?.tasks.length === 0 && <p className="ops-muted">{t("ops.tasks.none")}</p>}
      <ul className="ops-list">
        {tasks.data?.tasks.slice(0, 20).map((task) => (
          <li key={task.id}>
            <span>
              <strong>{task.flow}</strong> · {when(task.updated_at)}
            </span>
            <span className={`ops-badge ops-badge-${task.status}`}>{named("ops.status", task.status)}</span>
          </li>
        ))}
      </ul>
    </Card>
  );
}

function RemindersCard() {
  const reminders = useLoad(ops.reminders, [], POLL_MS);
  const [failure, setFailure] = useState<Error | null>(null);
  const cancel = async (r: Reminder) => {
    setFailure(null);
    try {
      await ops.cancelReminder(r.id);
    } catch (err) {
      setFailure(err instanceof Error ? err : new Error(String(err)));
    }
    reminders.reload();
  };
  return (
    <Card title={t("ops.reminders.title")} id="ops-reminders">
      <ErrorNote error={reminders.error ?? failure} />
      <Loading loading={reminders.loading && !reminders.data} />
      {reminders.data?.length === 0 && <p className="ops-muted">{t("ops.reminders.none")}</p>}
      <ul className="ops-list">
        {reminders.data?.map((r) => (
          <li key={r.id}>
            <span>
              <strong>{r.text}</strong> ·{" "}
              {r.kind === "cron" ? t("ops.reminders.cron", { schedule: r.schedule }) : ""}{" "}
              {r.next_run ? when(Date.parse(r.next_run) / 1000) : t("ops.reminders.firing")}
            </span>
            <button
              type="button"
              aria-label={t("ops.reminders.cancelNamed", { text: r.text })}
              onClick={() => void cancel(r)}
            >
              {t("ops.reminders.cancel")}
            </button>
          </li>
        ))}
      </ul>
    </Card>
  );
}

const DISABLED_REASON = "skills.disabled";

function SkillsCard({ owner }: { owner: boolean }) {
  const skills = useLoad(ops.skills);
  const [busy, setBusy] = useState<string | null>(null);
  const [failure, setFailure] = useState<Error | null>(null);
  // Switched-off skills say so in their reason (nexflow/skills/registry.py DISABLED_REASON).
  const off = (s: Skill) => !s.available && (s.reason ?? "").includes(DISABLED_REASON);
  const toggle = async (s: Skill) => {
    const names = (skills.data ?? []).filter(off).map((x) => x.name);
    const next = off(s) ? names.filter((n) => n !== s.name) : [...names, s.name];
    setBusy(s.name);
    setFailure(null);
    try {
      await ops.saveSettings({ "skills.disabled": next });
      skills.reload();
    } catch (err) {
      setFailure(err instanceof Error ? err : new Error(String(err)));
    } finally {
      setBusy(null);
    }
  };
  return (
    <Card title={t("ops.skills.title")} id="ops-skills" wide>
      <ErrorNote error={skills.error ?? failure} />
      <Loading loading={skills.loading && !skills.data} />
      {skills.data?.length === 0 && <p className="ops-muted">{t("ops.skills.none")}</p>}
      {skills.data && skills.data.length > 0 && (
        <p className="ops-muted">
          {t("ops.skills.summary", {
            count: skills.data.filter((s) => s.available).length,
            n: num(skills.data.filter((s) => s.available).length),
            total: num(skills.data.length),
          })}
        </p>
      )}
      <ul className="ops-list ops-columns">
        {skills.data?.map((s) => (
          <li key={s.name}>
            <div>
              <strong>
                {s.emoji ? `${s.emoji} ` : ""}
                {s.name}
              </strong>{" "}
              <span className={`ops-badge ${s.available ? "ops-badge-ok" : "ops-badge-off"}`}>
                {s.available ? t("ops.skills.available") : t("ops.skills.unavailable")}
              </span>
              <p className="ops-muted">{s.available ? s.description : s.reason}</p>
              {s.permissions.length > 0 && (
                <p className="ops-muted">
                  {t("ops.skills.permissions")}: {s.permissions.map((p) => named("ops.perm", p)).join(", ")}
                </p>
              )}
              {owner && (s.available || off(s)) && (
                <button
                  type="button"
                  disabled={busy !== null}
                  aria-label={t(off(s) ? "ops.skills.enableNamed" : "ops.skills.disableNamed", { name: s.name })}
                  onClick={() => void toggle(s)}
                >
                  {off(s) ? t("ops.skills.enable") : t("ops.skills.disable")}
                </button>
              )}
            </div>
          </li>
        ))}
      </ul>
    </Card>
  );
}

function SessionsCard() {
  const sessions = useLoad(ops.sessions);
  return (
    <Card title={t("ops.sessions.title")} id="ops-sessions">
      <ErrorNote error={sessions.error} />
      <Loading loading={sessions.loading && !sessions.data} />
      {sessions.data?.length === 0 && <p className="ops-muted">{t("ops.sessions.none")}</p>}
      <ul className="ops-list">
        {sessions.data?.map((s) => (
          <li key={s.id}>
            <a href={`#/assistant/${encodeURIComponent(s.id)}`}>{s.title || s.id.slice(0, 8)}</a>
            <span className="ops-muted">
              {s.channel} · {when(s.updated_at)}
            </span>
          </li>
        ))}
      </ul>
    </Card>
  );
}

function PairingCard() {
  const pairing = useLoad(ops.pairing, [], POLL_MS);
  const [err, setErr] = useState<Error | null>(null);
  const decide = async (p: Pairing, d: "approve" | "deny") => {
    setErr(null);
    try {
      await ops.decide(p, d);
      pairing.reload();
    } catch (e) {
      setErr(e as Error);
    }
  };
  return (
    <Card title={t("ops.pairing.title")} id="ops-pairing">
      <ErrorNote error={pairing.error ?? err} />
      <Loading loading={pairing.loading && !pairing.data} />
      {pairing.data?.length === 0 && <p className="ops-muted">{t("ops.pairing.none")}</p>}
      <ul className="ops-list">
        {pairing.data?.map((p) => (
          <li key={`${p.channel}/${p.code}`}>
            <div>
              <strong>{p.name || p.sender_id}</strong> · {p.channel} · <code>{p.code}</code>
              <p className="ops-muted">{t("ops.pairing.expires", { at: when(p.expires_at) })}</p>
            </div>
            <span className="ops-buttons">
              <button type="button" className="ops-primary" onClick={() => decide(p, "approve")}>
                {t("ops.pairing.approve")}
              </button>
              <button type="button" onClick={() => decide(p, "deny")}>
                {t("ops.pairing.deny")}
              </button>
            </span>
          </li>
        ))}
      </ul>
    </Card>
  );
}
