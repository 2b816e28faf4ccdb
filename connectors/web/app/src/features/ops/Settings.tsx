// #/settings (owner): model status and profiles, budgets, channels, tokens and logging,
// read from and written to the configuration file through /api/v1/settings. The server
// validates the whole file with the start-up loader: a refused value comes back as 422
// with the loader's own message, shown beside its field. Secrets are never sent to the
// page: a secret field says "set" or "not set" and offers a replacement input.
import { useState, type FormEvent } from "react";
import { ApiError } from "../../api/client";
import { t, useLocale } from "../../i18n";
import { ops, type Problem, type Settings, type SettingsSaved } from "./api";
import { Card, ErrorNote, Loading } from "./common";
import { useLoad } from "./useLoad";
import "./ops.css";

type Kind = "number" | "optnumber" | "text" | "opttext" | "select" | "bool" | "secret" | "list";
type Spec = { key: string; kind: Kind; options?: string[] };

function get(obj: unknown, key: string): unknown {
  return key.split(".").reduce<unknown>(
    (node, part) => (node && typeof node === "object" ? (node as Record<string, unknown>)[part] : undefined),
    obj,
  );
}

function labelFor(key: string): string {
  const leaf = key.split(".").pop() ?? key;
  const k = `ops.field.${leaf}`;
  const label = t(k);
  return label === k ? leaf : label;
}

function inputId(key: string): string {
  return `set-${key.replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

/** What the input shows for a config value. */
function shown(value: unknown, kind: Kind): string {
  if (value === null || value === undefined) return "";
  if (kind === "list" && Array.isArray(value)) return value.join(", ");
  return String(value);
}

/** What the server gets for an input's text (unparseable numbers go as typed: the
 * server's message says what is wrong). */
function parsed(text: string, kind: Kind): unknown {
  const v = text.trim();
  if (kind === "optnumber" || kind === "number") {
    if (v === "") return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : v;
  }
  if (kind === "list") return v ? v.split(",").map((s) => s.trim()).filter(Boolean) : [];
  if (kind === "opttext") return v === "" ? null : v;
  return text;
}

export function SettingsView() {
  useLocale();
  const settings = useLoad(ops.settings);
  const status = useLoad(ops.status);
  const [current, setCurrent] = useState<Settings | null>(null);
  const s = current ?? settings.data;
  if (settings.error instanceof ApiError && settings.error.status === 403) {
    return (
      <div className="ops-view">
        <h2>{t("ops.settings.title")}</h2>
        <p className="ops-muted">{t("ops.settings.ownerOnly")}</p>
      </div>
    );
  }
  const cfg = s?.config ?? {};
  const profiles = Object.keys((get(cfg, "llm.models") as Record<string, unknown>) ?? {});
  const channels = Object.keys((get(cfg, "security.channels") as Record<string, unknown>) ?? {});
  const connectors = (get(cfg, "connectors") as Record<string, Record<string, unknown>>) ?? {};
  const users = Object.keys((get(cfg, "web.users") as Record<string, unknown>) ?? {});
  const routes = (get(cfg, "llm.routes") as Record<string, string>) ?? {};
  return (
    <div className="ops-view">
      <div className="ops-head">
        <h2>{t("ops.settings.title")}</h2>
        {s && (
          <span className="ops-muted">
            {s.path ? t("ops.settings.file", { path: s.path }) : t("ops.settings.noFile")}
          </span>
        )}
      </div>
      <ErrorNote error={settings.error} />
      <Loading loading={settings.loading && !s} />
      {s?.error && (
        <div className="ops-error" role="alert">
          {t("ops.settings.fileError")} <pre>{s.error}</pre>
        </div>
      )}
      {s && s.pending_restart.length > 0 && (
        <p className="ops-note" role="status">
          {t("ops.settings.pending", { count: s.pending_restart.length, n: s.pending_restart.length })}{" "}
          <code>{s.pending_restart.slice(0, 6).join(", ")}</code>
          {s.pending_restart.length > 6 ? "…" : ""}
        </p>
      )}
      {s && (
        <div className="ops-grid">
          <Card title={t("ops.settings.model")} id="set-model" wide>
            {status.data && (
              <p className={status.data.model.configured ? "ops-ok" : "ops-error"}>
                {status.data.model.configured
                  ? t("ops.settings.modelReady", { name: status.data.model.name ?? "" })
                  : t("ops.settings.modelMissing")}{" "}
                {status.data.model.help && <span className="ops-muted">{status.data.model.help}</span>}
              </p>
            )}
            {Object.keys(routes).length > 0 && (
              <p className="ops-muted">
                {t("ops.settings.routes")}:{" "}
                {Object.entries(routes)
                  .map(([r, p]) => `${r} → ${p}`)
                  .join(", ")}
              </p>
            )}
            {profiles.length === 0 && <p className="ops-muted">{t("ops.settings.noProfiles")}</p>}
            {profiles.map((p) => (
              <Section
                key={p}
                title={t("ops.settings.profile", { name: p })}
                settings={s}
                onSaved={setCurrent}
                specs={[
                  { key: `llm.models.${p}.model`, kind: "text" },
                  { key: `llm.models.${p}.client`, kind: "select", options: ["auto", "litellm", "openai", "ollama"] },
                  { key: `llm.models.${p}.api_base`, kind: "opttext" },
                  { key: `llm.models.${p}.api_key`, kind: "secret" },
                  { key: `llm.models.${p}.timeout_s`, kind: "number" },
                  { key: `llm.models.${p}.max_tokens`, kind: "optnumber" },
                  { key: `llm.models.${p}.temperature`, kind: "optnumber" },
                ]}
              />
            ))}
            <Section
              title={t("ops.settings.modelGeneral")}
              settings={s}
              onSaved={setCurrent}
              specs={[{ key: "llm.stream", kind: "bool" }]}
            />
          </Card>
          <Card title={t("ops.settings.budgets")} id="set-budgets">
            <p className="ops-muted">{t("ops.settings.budgetsHelp")}</p>
            <Section
              settings={s}
              onSaved={setCurrent}
              specs={[
                { key: "budgets.per_user_daily_tokens", kind: "optnumber" },
                { key: "budgets.per_user_monthly_tokens", kind: "optnumber" },
                { key: "budgets.background_daily_tokens", kind: "optnumber" },
                { key: "budgets.soft_warning_ratio", kind: "number" },
                { key: "budgets.background_fire_tokens", kind: "number" },
                { key: "budgets.default_reserve_tokens", kind: "number" },
              ]}
            />
          </Card>
          <Card title={t("ops.settings.channels")} id="set-channels">
            <Section
              title={t("ops.settings.web")}
              settings={s}
              onSaved={setCurrent}
              specs={[
                { key: "web.host", kind: "text" },
                { key: "web.port", kind: "number" },
                { key: "web.public_url", kind: "opttext" },
                { key: "web.allowed_origins", kind: "list" },
              ]}
            />
            {channels.map((c) => (
              <Section
                key={c}
                title={t("ops.settings.access", { name: c })}
                settings={s}
                onSaved={setCurrent}
                specs={[
                  { key: `security.channels.${c}.policy`, kind: "select", options: ["pairing", "allowlist", "open", "disabled"] },
                  { key: `security.channels.${c}.allow`, kind: "list" },
                ]}
              />
            ))}
            {Object.entries(connectors).map(([name, section]) => (
              <Section
                key={name}
                title={t("ops.settings.connector", { name })}
                settings={s}
                onSaved={setCurrent}
                specs={Object.entries(section ?? {})
                  .filter(([, v]) => v === null || typeof v !== "object")
                  .map(([k, v]) => {
                    const key = `connectors.${name}.${k}`;
                    const kind: Kind =
                      key in s.secrets ? "secret" : typeof v === "boolean" ? "bool" : typeof v === "number" ? "number" : "text";
                    return { key, kind };
                  })}
              />
            ))}
            {channels.length === 0 && Object.keys(connectors).length === 0 && (
              <p className="ops-muted">{t("ops.settings.noChannels")}</p>
            )}
          </Card>
          <Card title={t("ops.settings.tokens")} id="set-tokens">
            <Section
              settings={s}
              onSaved={setCurrent}
              specs={[
                { key: "web.token", kind: "secret" },
                ...users.map((u) => ({ key: `web.users.${u}`, kind: "secret" as Kind })),
              ]}
            />
          </Card>
          <Card title={t("ops.settings.logging")} id="set-logging">
            <p className="ops-muted">{t("ops.settings.live")}</p>
            <Section
              settings={s}
              onSaved={setCurrent}
              specs={[
                { key: "logging.level", kind: "select", options: ["debug", "info", "warning", "error"] },
                { key: "logging.format", kind: "select", options: ["json", "console"] },
              ]}
            />
          </Card>
        </div>
      )}
    </div>
  );
}

function Section({
  title,
  specs,
  settings,
  onSaved,
}: {
  title?: string;
  specs: Spec[];
  settings: Settings;
  onSaved: (s: Settings) => void;
}) {
  const [draft, setDraft] = useState<Record<string, string | boolean>>({});
  const [problems, setProblems] = useState<Record<string, Problem>>({});
  const [general, setGeneral] = useState<string | null>(null);
  const [saved, setSaved] = useState<SettingsSaved | null>(null);
  const [busy, setBusy] = useState(false);
  const dirty = Object.keys(draft).length > 0;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const changes: Record<string, unknown> = {};
    for (const spec of specs) {
      if (!(spec.key in draft)) continue;
      const value = draft[spec.key];
      if (spec.kind === "secret" && value === "") continue;
      changes[spec.key] = typeof value === "boolean" ? value : parsed(value, spec.kind);
    }
    if (!Object.keys(changes).length) return;
    setBusy(true);
    setProblems({});
    setGeneral(null);
    setSaved(null);
    try {
      const result = await ops.saveSettings(changes);
      setDraft({});
      setSaved(result);
      onSaved(result.settings);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) {
        const list = (err.body as { problems?: Problem[] } | null)?.problems ?? [];
        const byKey: Record<string, Problem> = {};
        const rest: string[] = [];
        for (const p of list) {
          const spec = specs.find((sp) => p.path === sp.key || p.path.startsWith(`${sp.key}.`));
          if (spec) byKey[spec.key] = p;
          else rest.push(`${p.path}: ${p.message}${p.hint ? ` (${p.hint})` : ""}`);
        }
        setProblems(byKey);
        setGeneral(rest.length ? rest.join("\n") : list.length ? null : err.message);
      } else {
        setGeneral((err as Error).message);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="ops-form" onSubmit={submit} noValidate aria-label={title}>
      {title && <h4>{title}</h4>}
      {specs.map((spec) => (
        <FieldRow
          key={spec.key}
          spec={spec}
          settings={settings}
          value={draft[spec.key]}
          problem={problems[spec.key]}
          onChange={(v) => setDraft((d) => ({ ...d, [spec.key]: v }))}
        />
      ))}
      {general && (
        <p className="ops-error" role="alert">
          {general}
        </p>
      )}
      {saved && (
        <p className="ops-ok" role="status">
          {saved.restart_required.length
            ? t("ops.settings.savedRestart", { keys: saved.restart_required.join(", ") })
            : t("ops.settings.savedLive")}
        </p>
      )}
      <div className="ops-buttons">
        <button type="submit" className="ops-primary" disabled={!dirty || busy}>
          {busy ? t("ops.settings.saving") : t("ops.settings.save")}
        </button>
        {dirty && (
          <button type="button" onClick={() => (setDraft({}), setProblems({}), setGeneral(null))}>
            {t("ops.settings.reset")}
          </button>
        )}
      </div>
    </form>
  );
}

function FieldRow({
  spec,
  settings,
  value,
  problem,
  onChange,
}: {
  spec: Spec;
  settings: Settings;
  value: string | boolean | undefined;
  problem?: Problem;
  onChange: (v: string | boolean) => void;
}) {
  const id = inputId(spec.key);
  const errId = `${id}-err`;
  const current = get(settings.config, spec.key);
  const invalid = problem ? true : undefined;
  const describedBy = problem ? errId : undefined;
  let control;
  if (spec.kind === "bool") {
    control = (
      <input
        id={id}
        type="checkbox"
        checked={typeof value === "boolean" ? value : Boolean(current)}
        onChange={(e) => onChange(e.target.checked)}
        aria-invalid={invalid}
        aria-describedby={describedBy}
      />
    );
  } else if (spec.kind === "select") {
    control = (
      <select
        id={id}
        value={typeof value === "string" ? value : shown(current, spec.kind)}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={invalid}
        aria-describedby={describedBy}
      >
        {spec.options?.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (spec.kind === "secret") {
    const set = settings.secrets[spec.key] === true;
    control = (
      <span className="ops-secret">
        <span className={`ops-badge ${set ? "ops-badge-ok" : "ops-badge-off"}`} id={`${id}-state`}>
          {set ? t("ops.secret.set") : t("ops.secret.unset")}
        </span>
        <input
          id={id}
          type="password"
          autoComplete="new-password"
          placeholder={set ? t("ops.secret.replace") : t("ops.secret.enter")}
          value={typeof value === "string" ? value : ""}
          onChange={(e) => onChange(e.target.value)}
          aria-invalid={invalid}
          aria-describedby={[`${id}-state`, describedBy].filter(Boolean).join(" ")}
        />
      </span>
    );
  } else {
    const numeric = spec.kind === "number" || spec.kind === "optnumber";
    control = (
      <input
        id={id}
        type="text"
        inputMode={numeric ? "decimal" : undefined}
        value={typeof value === "string" ? value : shown(current, spec.kind)}
        placeholder={spec.kind === "optnumber" ? t("ops.field.unlimited") : undefined}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={invalid}
        aria-describedby={describedBy}
      />
    );
  }
  return (
    <div className={`ops-field${problem ? " ops-field-bad" : ""}`} data-key={spec.key}>
      <label htmlFor={id}>
        {labelFor(spec.key)} <code className="ops-key">{spec.key}</code>
      </label>
      {control}
      {problem && (
        <p className="ops-field-error" id={errId} role="alert">
          {problem.message}
          {problem.hint ? ` — ${problem.hint}` : ""}
        </p>
      )}
    </div>
  );
}
