// A panel's Sync and History, the seed's review loop: Sync asks the model for patches that
// bring the panel in line with the workspace (they wait in the patch review), History lists
// the panel's commits in the workspace's git repo and restores one as a new commit.
import { useState } from "react";
import { ApiError, api } from "../../api/client";
import { t } from "../../i18n";

interface Commit {
  sha: string;
  message: string;
  author: string;
  at: string;
}

interface SyncAnswer {
  patches: { id: string }[];
}

const enc = encodeURIComponent;

function message(err: unknown): string {
  return err instanceof ApiError || err instanceof Error ? err.message : String(err);
}

export function PanelReview({ panelId, title }: { panelId: string; title: string }) {
  const [busy, setBusy] = useState<"sync" | "history" | "restore" | null>(null);
  const [note, setNote] = useState<{ text: string; patch?: string; error?: boolean } | null>(null);
  const [history, setHistory] = useState<Commit[] | null>(null);

  const sync = async () => {
    setBusy("sync");
    setNote(null);
    try {
      const answer = await api<SyncAnswer>(`/api/v1/panels/${enc(panelId)}/sync`, {
        method: "POST",
      });
      const count = answer.patches.length;
      setNote(
        count === 0
          ? { text: t("ws.sync.none") }
          : { text: t("ws.sync.proposed", { count }), patch: answer.patches[0].id },
      );
    } catch (err) {
      setNote({ text: message(err), error: true });
    } finally {
      setBusy(null);
    }
  };

  const toggleHistory = async () => {
    if (history !== null) {
      setHistory(null);
      return;
    }
    setBusy("history");
    try {
      setHistory(await api<Commit[]>(`/api/v1/panels/${enc(panelId)}/history`));
    } catch (err) {
      setNote({ text: message(err), error: true });
    } finally {
      setBusy(null);
    }
  };

  const restore = async (sha: string) => {
    setBusy("restore");
    try {
      await api<Commit>(`/api/v1/panels/${enc(panelId)}/restore`, { method: "POST", body: { sha } });
      setNote({ text: t("ws.history.restored", { sha: sha.slice(0, 7) }) });
      setHistory(await api<Commit[]>(`/api/v1/panels/${enc(panelId)}/history`));
    } catch (err) {
      setNote({ text: message(err), error: true });
    } finally {
      setBusy(null);
    }
  };

  return (
    <div className="panel-review">
      <div className="panel-review-buttons">
        <button
          type="button"
          onClick={() => void sync()}
          disabled={busy !== null}
          aria-label={t("ws.sync.named", { title })}
        >
          {busy === "sync" ? t("ws.sync.running") : t("ws.sync")}
        </button>
        <button
          type="button"
          onClick={() => void toggleHistory()}
          disabled={busy !== null}
          aria-expanded={history !== null}
          aria-label={t("ws.history.named", { title })}
        >
          {t("ws.history")}
        </button>
      </div>
      <div role="status" aria-live="polite">
        {note && (
          <p className={note.error ? "panel-error" : "panel-note"}>
            {note.text}{" "}
            {note.patch && <a href={`#/patches/${enc(note.patch)}`}>{t("ws.sync.review")}</a>}
          </p>
        )}
      </div>
      {history !== null && (
        <ol className="panel-history" aria-label={t("ws.history.named", { title })}>
          {history.length === 0 && <li>{t("ws.history.empty")}</li>}
          {history.map((c, i) => (
            <li key={c.sha}>
              <code>{c.sha.slice(0, 7)}</code> {c.message}{" "}
              <time dateTime={c.at}>{new Date(c.at).toLocaleString()}</time>{" "}
              {i > 0 && (
                <button
                  type="button"
                  disabled={busy !== null}
                  aria-label={t("ws.history.restoreNamed", { sha: c.sha.slice(0, 7) })}
                  onClick={() => void restore(c.sha)}
                >
                  {t("ws.history.restore")}
                </button>
              )}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
