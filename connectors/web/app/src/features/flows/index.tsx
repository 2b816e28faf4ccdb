// The Flows view (#/flows/<name?>): the caller's flows with their validity, a form for a new
// one, and the editor of the chosen flow, loaded on demand (xyflow and the YAML library are
// in the editor's chunk, not in the first load).
import { lazy, Suspense, useCallback, useEffect, useState, type FormEvent } from "react";
import { t, useLocale } from "../../i18n";
import { listFlows, type FlowSummary } from "./api";
import "./flows.css";

const FlowEditor = lazy(() => import("./FlowEditor"));
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export function FlowsView({ name }: { name?: string }) {
  useLocale();
  const [flows, setFlows] = useState<FlowSummary[] | null>(null);
  const [error, setError] = useState("");
  const [draft, setDraft] = useState("");
  const [invalid, setInvalid] = useState("");

  const reload = useCallback(() => {
    listFlows().then(
      (fs) => {
        setFlows(fs);
        setError("");
      },
      (exc: unknown) => setError(exc instanceof Error ? exc.message : String(exc)),
    );
  }, []);
  useEffect(reload, [reload]);

  const create = (e: FormEvent) => {
    e.preventDefault();
    const value = draft.trim();
    if (!NAME.test(value)) {
      setInvalid(t("fl.badName"));
      return;
    }
    setInvalid("");
    setDraft("");
    location.hash = `#/flows/${encodeURIComponent(value)}`;
  };

  return (
    <div className="fl-view">
      <section className="fl-list" aria-labelledby="fl-list-title">
        <h1 id="fl-list-title">{t("fl.title")}</h1>
        {error && <p role="alert">{t("fl.listFailed", { message: error })}</p>}
        {flows === null && !error ? (
          <p className="fl-muted">{t("fl.loading")}</p>
        ) : flows && flows.length === 0 ? (
          <p className="fl-muted">{t("fl.none")}</p>
        ) : (
          <ul>
            {(flows ?? []).map((f) => (
              <li key={f.name}>
                <a href={`#/flows/${encodeURIComponent(f.name)}`} aria-current={f.name === name ? "page" : undefined}>
                  {f.name}
                </a>{" "}
                <span className={`fl-badge ${f.valid ? "is-ok" : "is-bad"}`}>
                  {f.valid ? t("fl.valid") : t("fl.problems", { count: f.errors.length })}
                </span>
                {f.description && <span className="fl-muted fl-desc">{f.description}</span>}
              </li>
            ))}
          </ul>
        )}
        <form className="fl-new" onSubmit={create}>
          <label htmlFor="fl-new-name">{t("fl.newName")}</label>
          <input
            id="fl-new-name"
            value={draft}
            placeholder={t("fl.newPlaceholder")}
            aria-invalid={!!invalid}
            aria-describedby={invalid ? "fl-new-bad" : undefined}
            onChange={(e) => setDraft(e.target.value)}
          />
          <button type="submit">{t("fl.new")}</button>
          {invalid && (
            <span id="fl-new-bad" className="fl-error-text">
              {invalid}
            </span>
          )}
        </form>
      </section>
      <section className="fl-main" aria-label={t("fl.editor")}>
        {name ? (
          <Suspense fallback={<p className="fl-muted">{t("fl.loadingEditor")}</p>}>
            <FlowEditor key={name} name={name} onSaved={reload} />
          </Suspense>
        ) : (
          <p className="fl-muted">{t("fl.pick")}</p>
        )}
      </section>
    </div>
  );
}
