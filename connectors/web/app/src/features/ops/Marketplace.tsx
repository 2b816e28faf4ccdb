// #/marketplace (owner): skills and panel templates from the configured indexes; review
// one (its permissions and what the scan found) and install it through the verified path.
import { useState } from "react";
import { ApiError } from "../../api/client";
import { t, useLocale } from "../../i18n";
import { ops, type MarketEntry, type Review } from "./api";
import { Card, ErrorNote, Loading, named } from "./common";
import { useLoad } from "./useLoad";
import "./ops.css";

export function MarketplaceView() {
  useLocale();
  const market = useLoad(ops.marketplace);
  const m = market.data;
  return (
    <div className="ops-view">
      <div className="ops-head">
        <h2>{t("ops.market.title")}</h2>
      </div>
      <ErrorNote error={market.error} />
      <Loading loading={market.loading && !m} />
      {m && (
        <>
          {m.errors.map((e) => (
            <p key={e} className="ops-error" role="alert">
              {e}
            </p>
          ))}
          <div className="ops-grid">
            {(["skill", "panel"] as const).map((kind) => (
              <Card key={kind} id={`ops-market-${kind}`} title={t(`ops.market.${kind}s`)}>
                {!m.indexes[kind] && <p className="ops-muted">{t(`ops.market.noIndex.${kind}`)}</p>}
                <ul className="ops-list">
                  {m.entries
                    .filter((e) => e.kind === kind)
                    .map((e) => (
                      <Entry key={e.slug} entry={e} onInstalled={market.reload} />
                    ))}
                </ul>
              </Card>
            ))}
          </div>
        </>
      )}
    </div>
  );
}

function Entry({ entry, onInstalled }: { entry: MarketEntry; onInstalled: () => void }) {
  const [review, setReview] = useState<Review | null>(null);
  const [approve, setApprove] = useState(false);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<Error | null>(null);
  const [done, setDone] = useState(false);
  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    setErr(null);
    try {
      await what();
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        const body = e.body as { review?: Review } | null;
        if (body?.review) setReview(body.review);
      }
      setErr(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="ops-entry">
      <div>
        <strong>{entry.slug}</strong> {entry.version && <span className="ops-muted">v{entry.version}</span>}{" "}
        {entry.installed && (
          <span className="ops-badge ops-badge-ok">
            {t("ops.market.installed", { version: entry.installed_version ?? "" })}
          </span>
        )}
        <p className="ops-muted">{entry.description}</p>
        {review && (
          <div className="ops-review">
            <p>
              {t("ops.skills.permissions")}:{" "}
              {review.permissions.length ? review.permissions.map((p) => named("ops.perm", p)).join(", ") : t("ops.none")}
            </p>
            {review.findings.length === 0 ? (
              <p className="ops-ok">{t("ops.market.clean")}</p>
            ) : (
              <ul>
                {review.findings.map((f, i) => (
                  <li key={i} className={`ops-finding ops-finding-${f.severity}`}>
                    <strong>{f.severity}</strong> {f.rule}: {f.message} ({f.file}
                    {f.line ? `:${f.line}` : ""})
                  </li>
                ))}
              </ul>
            )}
            {review.warnings.map((w) => (
              <p key={w} className="ops-muted">
                {w}
              </p>
            ))}
            {review.flagged && (
              <label className="ops-check">
                <input type="checkbox" checked={approve} onChange={(e) => setApprove(e.target.checked)} />
                {t("ops.market.approve")}
              </label>
            )}
          </div>
        )}
        <ErrorNote error={err} />
        {done && <p className="ops-ok" role="status">{t("ops.market.done")}</p>}
      </div>
      <span className="ops-buttons">
        <button
          type="button"
          disabled={busy}
          onClick={() => run(async () => setReview(await ops.review(entry.kind, entry.slug)))}
          aria-label={t("ops.market.reviewOne", { slug: entry.slug })}
        >
          {t("ops.market.review")}
        </button>
        <button
          type="button"
          className="ops-primary"
          disabled={busy || (review?.flagged === true && !approve)}
          onClick={() =>
            run(async () => {
              await ops.install(entry.kind, entry.slug, approve);
              setDone(true);
              onInstalled();
            })
          }
          aria-label={t(entry.installed ? "ops.market.reinstallOne" : "ops.market.installOne", { slug: entry.slug })}
        >
          {entry.installed ? t("ops.market.reinstall") : t("ops.market.install")}
        </button>
      </span>
    </li>
  );
}
