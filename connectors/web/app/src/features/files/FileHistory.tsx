// One file's commits, newest first; any older one can be restored (a new commit: history
// is never rewritten).
import { useEffect, useState } from "react";
import { t, useLocale, locale } from "../../i18n";
import { type Commit, fetchHistory, isReadOnly, restoreFile } from "./api";

export type FileHistoryProps = {
  workspace: string;
  path: string;
  refreshKey: number;
  /** Asked before a restore replaces unsaved edits; false cancels. */
  confirmDiscard: () => boolean;
  onRestored: (commit: Commit) => void;
};

function who(c: Commit): string {
  if (c.by_you) return t("fi.you");
  if (c.author === "nexflow-ai") return t("fi.ai");
  return c.author.length > 16 ? `${c.author.slice(0, 12)}…` : c.author;
}

export function FileHistory({ workspace, path, refreshKey, confirmDiscard, onRestored }: FileHistoryProps) {
  useLocale();
  const [commits, setCommits] = useState<Commit[] | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setError("");
    fetchHistory(workspace, path)
      .then((c) => live && setCommits(c))
      .catch((err: Error) => live && (setCommits([]), setError(err.message)));
    return () => {
      live = false;
    };
  }, [workspace, path, refreshKey]);

  const restore = async (c: Commit) => {
    if (!confirmDiscard()) return;
    setBusy(c.sha);
    setError("");
    try {
      onRestored(await restoreFile(workspace, path, c.sha));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(null);
    }
  };

  const when = new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" });
  return (
    <section className="fi-history" aria-labelledby="fi-history-title">
      <h2 id="fi-history-title">{t("fi.history")}</h2>
      {error && (
        <p className="fi-error" role="alert">
          {error}
        </p>
      )}
      {commits === null ? (
        <p role="status">{t("fi.loading")}</p>
      ) : commits.length === 0 ? (
        <p className="fi-empty">{t("fi.noHistory")}</p>
      ) : (
        <>
          <p className="fi-muted">{t("fi.versions", { count: commits.length })}</p>
          <ol className="fi-commits">
            {commits.map((c, i) => (
              <li key={c.sha} className="fi-commit-item">
                <span className="fi-commit-msg">{c.message.split("\n")[0]}</span>
                <span className="fi-muted">
                  <code>{c.sha.slice(0, 7)}</code> · {who(c)} · {when.format(new Date(c.at * 1000))}
                </span>
                {i === 0 ? (
                  <span className="fi-current">{t("fi.current")}</span>
                ) : (
                  !isReadOnly(path) && (
                    <button
                      type="button"
                      onClick={() => void restore(c)}
                      disabled={busy !== null}
                      aria-label={t("fi.restoreLabel", { sha: c.sha.slice(0, 7) })}
                    >
                      {busy === c.sha ? t("fi.restoring") : t("fi.restore")}
                    </button>
                  )
                )}
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
