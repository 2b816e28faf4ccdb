// Patch review (route #/patches/<id?>): the patches the AI proposed, and one patch's
// changes side by side per target — panel state keys changed, NXML nodes removed and
// added, each file's text before and after — with Accept / Reject and, when the patch
// cannot be merged, why (the gateway's own message) and what to do about it.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../../api/client";
import { subscribe } from "../../api/events";
import { locale, t, useLocale } from "../../i18n";
import { decide, getPatch, listPatches, type Patch, type PatchDiff } from "./api";
import { parseUnified, type FileDiff, type Side } from "./diff";
import "./patches.css";

const STATUSES = ["", "pending", "conflict", "merged", "rejected"];

function when(ts: number): string {
  return new Date(ts * 1000).toLocaleString(locale());
}

function statusText(status: string): string {
  return ["pending", "conflict", "merged", "rejected"].includes(status) ? t(`as.patches.status.${status}`) : status;
}

function targetText(target: string): string {
  const [kind, ...rest] = target.split(":");
  const name = rest.join(":");
  if (kind === "panel") return t("as.patches.target.panel", { name });
  if (kind === "file") return t("as.patches.target.file", { name });
  return target;
}

export function PatchesView({ patchId }: { patchId?: string }) {
  useLocale();
  const [status, setStatus] = useState("pending");
  const [items, setItems] = useState<Patch[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);

  useEffect(() => {
    let alive = true;
    listPatches(status).then(
      (found) => {
        if (!alive) return;
        setItems(found);
        setError(null);
      },
      (err: unknown) => alive && setError(err instanceof ApiError ? err.message : String(err)),
    );
    return () => {
      alive = false;
    };
  }, [status, version]);

  useEffect(
    () =>
      subscribe((frame) => {
        if (frame.type === "patch" || (frame.type === "connection" && frame.state === "open")) {
          setVersion((v) => v + 1);
        }
      }),
    [],
  );

  const changed = useCallback(() => setVersion((v) => v + 1), []);

  return (
    <div className="pt-view">
      <section className="pt-list" aria-labelledby="pt-list-title">
        <h1 id="pt-list-title">{t("as.patches.title")}</h1>
        <label htmlFor="pt-status">{t("as.patches.filter")}</label>
        <select id="pt-status" value={status} onChange={(e) => setStatus(e.target.value)}>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s ? statusText(s) : t("as.patches.status.all")}
            </option>
          ))}
        </select>
        {error && (
          <p className="pt-error" role="alert">
            {error}
          </p>
        )}
        {items !== null && items.length === 0 && <p className="pt-muted">{t("as.patches.none")}</p>}
        <ul>
          {(items ?? []).map((p) => (
            <li key={p.id}>
              <a href={`#/patches/${encodeURIComponent(p.id)}`} aria-current={p.id === patchId ? "page" : undefined}>
                <span className="pt-summary">{p.summary || p.id}</span>
                <span className="pt-meta">
                  <span className={`pt-badge ${p.status}`}>{statusText(p.status)}</span> {targetText(p.target)} ·{" "}
                  {when(p.created_at)}
                </span>
              </a>
            </li>
          ))}
        </ul>
      </section>
      <section className="pt-detail" aria-label={t("as.patches.detail")}>
        {patchId ? (
          <PatchDetail key={patchId} id={patchId} version={version} onChange={changed} />
        ) : (
          <p className="pt-muted">{t("as.patches.pick")}</p>
        )}
      </section>
    </div>
  );
}

function explain(err: unknown): string {
  if (!(err instanceof ApiError)) return String(err);
  if (err.code === "not_pending") return t("as.patches.err.decided", { message: err.message });
  if (err.code === "not_found" || err.status === 404) return t("as.patches.err.missing");
  if (err.code === "forbidden" || err.status === 403) return t("as.patches.err.missing");
  return err.message;
}

function PatchDetail({ id, version, onChange }: { id: string; version: number; onChange: () => void }) {
  const [patch, setPatch] = useState<PatchDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<string | null>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    let alive = true;
    getPatch(id).then(
      (p) => {
        if (!alive) return;
        setPatch(p);
        setError(null);
      },
      (err: unknown) => alive && setError(explain(err)),
    );
    return () => {
      alive = false;
    };
  }, [id, version]);

  useEffect(() => {
    headingRef.current?.focus();
  }, [id, patch !== null]);

  const act = async (verb: "accept" | "reject") => {
    setBusy(true);
    setError(null);
    try {
      const r = await decide(id, verb);
      setPatch((p) => (p ? { ...p, ...r } : p));
      setOutcome(r.status);
      onChange();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };

  if (patch === null)
    return error ? (
      <p className="pt-error" role="alert">
        {error}
      </p>
    ) : (
      <p className="pt-muted">{t("as.patches.loading")}</p>
    );

  const files = parseUnified(patch.diff);
  const open = patch.status === "pending" || patch.status === "conflict";
  return (
    <article className="pt-patch" data-patch={patch.id} data-status={patch.status}>
      <h2 ref={headingRef} tabIndex={-1}>
        {patch.summary || patch.id}
      </h2>
      <dl className="pt-facts">
        <dt>{t("as.patches.status")}</dt>
        <dd>
          <span className={`pt-badge ${patch.status}`} data-testid="pt-status">
            {statusText(patch.status)}
          </span>
        </dd>
        <dt>{t("as.patches.target")}</dt>
        <dd>{targetText(patch.target)}</dd>
        <dt>{t("as.patches.source")}</dt>
        <dd>{patch.source}</dd>
        <dt>{t("as.patches.created")}</dt>
        <dd>{when(patch.created_at)}</dd>
        {patch.merge_commit && (
          <>
            <dt>{t("as.patches.commit")}</dt>
            <dd>
              <code>{patch.merge_commit.slice(0, 12)}</code>
            </dd>
          </>
        )}
      </dl>
      {patch.status === "conflict" && (
        <div className="pt-conflict" role="alert">
          <strong>{t("as.patches.conflict.title")}</strong>
          <p>{patch.reason || t("as.patches.conflict.noreason")}</p>
          <p>{t("as.patches.conflict.help")}</p>
        </div>
      )}
      {patch.problems.length > 0 && (
        <div className="pt-conflict" role="note">
          <strong>{t("as.patches.problems")}</strong>
          <ul>
            {patch.problems.map((p, i) => (
              <li key={i}>{p}</li>
            ))}
          </ul>
        </div>
      )}
      {open && (
        <div className="pt-actions">
          <button type="button" className="pt-accept" disabled={busy} onClick={() => act("accept")}>
            {t("as.patches.accept")}
          </button>
          <button type="button" className="pt-reject" disabled={busy} onClick={() => act("reject")}>
            {t("as.patches.reject")}
          </button>
        </div>
      )}
      {outcome && (
        <p className="pt-outcome" role="status">
          {outcome === "merged"
            ? t("as.patches.done.merged")
            : outcome === "rejected"
              ? t("as.patches.done.rejected")
              : outcome === "conflict"
                ? t("as.patches.done.conflict")
                : statusText(outcome)}
        </p>
      )}
      {error && (
        <p className="pt-error" role="alert">
          {error}
        </p>
      )}

      {patch.state_keys.length > 0 && (
        <section className="pt-section" aria-labelledby="pt-state">
          <h3 id="pt-state">{t("as.patches.state")}</h3>
          <ul className="pt-keys">
            {patch.state_keys.map((k) => (
              <li key={k}>
                <code>{k}</code>
              </li>
            ))}
          </ul>
        </section>
      )}
      {(patch.nodes_added.length > 0 || patch.nodes_removed.length > 0) && (
        <section className="pt-section" aria-labelledby="pt-nodes">
          <h3 id="pt-nodes">{t("as.patches.nodes")}</h3>
          <div className="pt-columns">
            <div>
              <h4>{t("as.patches.nodes.removed")}</h4>
              <ul className="pt-nodes del">
                {patch.nodes_removed.length === 0 && <li className="pt-muted">{t("as.patches.nothing")}</li>}
                {patch.nodes_removed.map((n, i) => (
                  <li key={i}>
                    <span aria-hidden="true">− </span>
                    <code>{n}</code>
                  </li>
                ))}
              </ul>
            </div>
            <div>
              <h4>{t("as.patches.nodes.added")}</h4>
              <ul className="pt-nodes add">
                {patch.nodes_added.length === 0 && <li className="pt-muted">{t("as.patches.nothing")}</li>}
                {patch.nodes_added.map((n, i) => (
                  <li key={i}>
                    <span aria-hidden="true">+ </span>
                    <code>{n}</code>
                  </li>
                ))}
              </ul>
            </div>
          </div>
        </section>
      )}
      <section className="pt-section" aria-labelledby="pt-files">
        <h3 id="pt-files">{t("as.patches.files", { count: files.length })}</h3>
        {files.length === 0 && <p className="pt-muted">{t("as.patches.nodiff")}</p>}
        {files.map((f, i) => (
          <FileTable key={`${f.path}:${i}`} file={f} />
        ))}
      </section>
    </article>
  );
}

function Cell({ side, which }: { side: Side | null; which: "left" | "right" }) {
  if (side === null) return <><td className="pt-no" /><td className={`pt-code empty ${which}`} /></>;
  const mark = side.kind === "del" ? "−" : side.kind === "add" ? "+" : " ";
  const label = side.kind === "del" ? t("as.patches.line.removed") : side.kind === "add" ? t("as.patches.line.added") : "";
  return (
    <>
      <td className="pt-no">{side.no}</td>
      <td className={`pt-code ${side.kind}`}>
        {label && <span className="visually-hidden">{label}: </span>}
        <span aria-hidden="true" className="pt-mark">
          {mark}
        </span>
        {side.text}
      </td>
    </>
  );
}

function FileTable({ file }: { file: FileDiff }) {
  return (
    <figure className="pt-file">
      <figcaption>
        <code>{file.path}</code> <span className="pt-muted">({t(`as.patches.file.${file.status}`)})</span>
      </figcaption>
      <div className="pt-scroll" tabIndex={0} role="region" aria-label={t("as.patches.file.diff", { path: file.path })}>
        <table className="pt-sbs">
          <colgroup>
            <col className="pt-nocol" />
            <col />
            <col className="pt-nocol" />
            <col />
          </colgroup>
          <thead>
            <tr>
              <th scope="col" colSpan={2}>
                {t("as.patches.before")}
              </th>
              <th scope="col" colSpan={2}>
                {t("as.patches.after")}
              </th>
            </tr>
          </thead>
          {file.hunks.map((h, i) => (
            <tbody key={i}>
              <tr className="pt-hunk">
                <td colSpan={4}>{h.header}</td>
              </tr>
              {h.rows.map((r, j) => (
                <tr key={j}>
                  <Cell side={r.left} which="left" />
                  <Cell side={r.right} which="right" />
                </tr>
              ))}
            </tbody>
          ))}
        </table>
      </div>
    </figure>
  );
}
