// The cards of a conversation: a confirmation (Confirm / Cancel), a panel (its current
// snapshot, kept live from /ws/events, its buttons, a link to open it in the workspace),
// a patch (summary, a short diff, Accept / Reject, a link to the full review), a file.
import DOMPurify from "dompurify";
import { useEffect, useState } from "react";
import { ApiError } from "../../api/client";
import { subscribe } from "../../api/events";
import { t } from "../../i18n";
import {
  answerConfirmation,
  decidePatch,
  panelSnapshot,
  panelWorkspace,
  pressButton,
  type Button,
  type Outbound,
  type PanelSnapshot,
} from "./api";

const FORMAT_TAGS = ["b", "i", "code", "pre", "u", "s", "br", "strong", "em"];

function safeHtml(html: string): string {
  return DOMPurify.sanitize(html, { ALLOWED_TAGS: FORMAT_TAGS, ALLOWED_ATTR: [] });
}

function errorText(err: unknown): string {
  return err instanceof ApiError ? err.message : String(err);
}

type Confirmation = Extract<Outbound, { kind: "confirmation" }>;
type PanelOut = Extract<Outbound, { kind: "panel_snapshot" }>;
type PatchOut = Extract<Outbound, { kind: "patch_review" }>;

export function ConfirmationCard({ out, status }: { out: Confirmation; status?: string }) {
  const [state, setState] = useState<string>(status ?? "pending");
  const [busy, setBusy] = useState(false);
  const answer = async (approve: boolean) => {
    setBusy(true);
    try {
      const r = await answerConfirmation(out.confirmation_id, approve);
      setState(r.outcome);
    } catch (err) {
      setState(err instanceof ApiError && err.body && typeof err.body === "object" && "outcome" in err.body
        ? String((err.body as { outcome: string }).outcome)
        : "unknown");
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="as-card as-confirm" aria-label={t("as.confirm.label")} data-confirmation={out.confirmation_id}>
      <h3>{out.title}</h3>
      <pre>{out.detail}</pre>
      {state === "pending" ? (
        <div className="as-buttons">
          <button type="button" className="as-primary" disabled={busy} onClick={() => answer(true)}>
            {t("as.confirm.approve")}
          </button>
          <button type="button" disabled={busy} onClick={() => answer(false)}>
            {t("as.confirm.decline")}
          </button>
        </div>
      ) : (
        <p className="as-note" role="status">
          {t(`as.confirm.${["approved", "declined", "expired", "used"].includes(state) ? state : "unknown"}`)}
        </p>
      )}
    </section>
  );
}

export function PanelCard({ out, status }: { out: PanelOut; status?: string }) {
  const [snap, setSnap] = useState<PanelSnapshot>(out);
  const [gone, setGone] = useState(status === "gone");
  const [workspace, setWorkspace] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const task = out.panel_id.startsWith("task:");

  useEffect(() => {
    if (task || gone) return;
    let alive = true;
    panelWorkspace(out.panel_id).then(
      (p) => alive && setWorkspace(p.workspace),
      () => undefined,
    );
    // Live: the panel's updates arrive on /ws/events; the card re-reads its snapshot.
    const off = subscribe((frame) => {
      if (frame.type === "panel.updated" && frame.panel_id === out.panel_id) {
        panelSnapshot(out.panel_id).then((s) => alive && setSnap(s), () => undefined);
      } else if (frame.type === "panel.deleted" && frame.panel_id === out.panel_id) {
        setGone(true);
      } else if (frame.type === "connection" && frame.state === "open") {
        panelSnapshot(out.panel_id).then((s) => alive && setSnap(s), () => undefined);
      }
    });
    return () => {
      alive = false;
      off();
    };
  }, [out.panel_id, task, gone]);

  const press = async (b: Button) => {
    setError(null);
    try {
      const r = await pressButton(out.panel_id, b.action);
      if (r.snapshot) setSnap(r.snapshot);
    } catch (err) {
      setError(errorText(err));
    }
  };
  const buttons = snap.buttons.filter((b) => b.action.startsWith("panel:"));
  const wsName = workspace ? workspace.split("/").pop() ?? workspace : null;
  return (
    <section className="as-card as-panel" aria-label={t("as.panel.label", { title: snap.title })} data-panel={out.panel_id}>
      <div className="as-snapshot" dangerouslySetInnerHTML={{ __html: safeHtml(snap.text) }} />
      {gone ? (
        <p className="as-note">{t("as.panel.gone")}</p>
      ) : (
        <div className="as-buttons">
          {buttons.map((b) => (
            <button type="button" key={b.action} onClick={() => press(b)}>
              {b.label}
            </button>
          ))}
          {wsName !== null && (
            <a className="as-link" href={`#/w/${encodeURIComponent(wsName)}/${encodeURIComponent(out.panel_id)}`}>
              {t("as.panel.open")}
            </a>
          )}
        </div>
      )}
      {error && (
        <p className="as-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

export function patchOutcome(status: string, reason: string, merge: string): string {
  if (status === "merged") return t("as.patch.merged", { commit: merge.slice(0, 10) });
  if (status === "rejected") return t("as.patch.rejected");
  if (status === "conflict") return t("as.patch.conflict", { reason });
  return t("as.patch.status", { status, reason });
}

export function PatchCard({
  out,
  status,
  reason,
  merge,
}: {
  out: PatchOut;
  status?: string;
  reason?: string;
  merge?: string;
}) {
  const [state, setState] = useState({ status: status ?? "pending", reason: reason ?? "", merge: merge ?? "" });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // Decided elsewhere (the patch review, another tab, another chat): the card follows.
  useEffect(
    () =>
      subscribe((frame) => {
        if (frame.type !== "patch" || frame.patch.id !== out.patch_id) return;
        const p = frame.patch;
        setState({ status: String(p.status), reason: String(p.reason ?? ""), merge: String(p.merge_commit ?? "") });
      }),
    [out.patch_id],
  );
  const decide = async (verb: "accept" | "reject") => {
    setBusy(true);
    setError(null);
    try {
      const r = await decidePatch(out.patch_id, verb);
      setState({ status: r.status, reason: r.reason, merge: r.merge_commit });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const pending = state.status === "pending" || state.status === "conflict";
  return (
    <section className="as-card as-patch" aria-label={t("as.patch.label", { id: out.patch_id })} data-patch={out.patch_id}>
      <h3>{out.title}</h3>
      {out.summary.length > 0 && (
        <ul className="as-summary">
          {out.summary.map((line, i) => (
            <li key={i}>{line}</li>
          ))}
        </ul>
      )}
      <details>
        <summary>{t("as.patch.diff")}</summary>
        <pre className="as-diff">
          {out.diff.split("\n").map((line, i) => (
            <span
              key={i}
              className={
                line.startsWith("+") && !line.startsWith("+++")
                  ? "add"
                  : line.startsWith("-") && !line.startsWith("---")
                    ? "del"
                    : line.startsWith("@@")
                      ? "hunk"
                      : undefined
              }
            >
              {line + "\n"}
            </span>
          ))}
        </pre>
      </details>
      <div className="as-buttons">
        {pending && (
          <>
            <button type="button" className="as-primary" disabled={busy} onClick={() => decide("accept")}>
              {t("as.patch.accept")}
            </button>
            <button type="button" disabled={busy} onClick={() => decide("reject")}>
              {t("as.patch.reject")}
            </button>
          </>
        )}
        <a className="as-link" href={`#/patches/${encodeURIComponent(out.patch_id)}`}>
          {t("as.patch.review")}
        </a>
      </div>
      {state.status !== "pending" && (
        <p className="as-note" role="status">
          {patchOutcome(state.status, state.reason, state.merge)}
        </p>
      )}
      {error && (
        <p className="as-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

export function Card({ entry }: { entry: { outbound: Outbound; status?: string; reason?: string; merge_commit?: string } }) {
  const out = entry.outbound;
  switch (out.kind) {
    case "confirmation":
      return <ConfirmationCard out={out} status={entry.status} />;
    case "panel_snapshot":
      return <PanelCard out={out} status={entry.status} />;
    case "patch_review":
      return <PatchCard out={out} status={entry.status} reason={entry.reason} merge={entry.merge_commit} />;
    case "file":
      return (
        <div className="as-msg as-assistant">
          {t("as.file", { path: out.path })} {out.caption}
        </div>
      );
    default:
      return <div className="as-msg as-assistant">{out.text}</div>;
  }
}
