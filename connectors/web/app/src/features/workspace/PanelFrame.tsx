// One panel in the workspace: its header (move, close, delete), the inline error of the
// last tool call, and the body hydrated from the render tree by the registry.
import { useCallback, useId, useRef, useState } from "react";
import { t } from "../../i18n";
import { callTool, type Json, type PanelDetail } from "../../api/panels";
import { PanelReview } from "./PanelReview";
import { RenderNodeView } from "./registry";

export interface PanelActions {
  areas: { id: string; label: string }[];
  areaId: string;
  onMove: (areaId: string | "new") => void;
  onClose: () => void;
  onDelete: () => void;
  onRefresh: () => void;
  onToast: (text: string) => void;
}

export function PanelFrame({ detail, actions }: { detail: PanelDetail; actions: PanelActions }) {
  const [error, setError] = useState<string | null>(null);
  const titleId = useId();
  const version = useRef(detail.version);
  version.current = detail.version;
  const { onRefresh, onToast } = actions;

  const onTrigger = useCallback(
    async (tool: string, args: Record<string, Json>) => {
      const outcome = await callTool(detail.id, tool, args);
      if (!outcome.ok) {
        setError(outcome.error?.message ?? t("ws.tool.failed"));
        return false;
      }
      setError(null);
      for (const flow of outcome.flows ?? []) onToast(flow.message);
      // The live frame normally arrives first; without the socket, read the panel again.
      setTimeout(() => {
        if (version.current < outcome.version) onRefresh();
      }, 1500);
      return true;
    },
    [detail.id, onRefresh, onToast],
  );

  return (
    <article className="panel-frame" aria-labelledby={titleId} data-panel={detail.id} data-template={detail.template}>
      <header className="panel-head">
        <h2 id={titleId}>{detail.render.title || detail.title}</h2>
        <label className="visually-hidden" htmlFor={`${titleId}-move`}>
          {t("ws.move", { title: detail.title })}
        </label>
        <select
          id={`${titleId}-move`}
          value=""
          onChange={(e) => e.target.value && actions.onMove(e.target.value)}
          title={t("ws.move", { title: detail.title })}
        >
          <option value="">{t("ws.move.to")}</option>
          {actions.areas
            .filter((a) => a.id !== actions.areaId)
            .map((a) => (
              <option key={a.id} value={a.id}>
                {a.label}
              </option>
            ))}
          <option value="new">{t("ws.move.new")}</option>
        </select>
        <button type="button" onClick={actions.onClose} aria-label={t("ws.close", { title: detail.title })} title={t("ws.close", { title: detail.title })}>
          ✕
        </button>
        <button
          type="button"
          className="danger-text"
          aria-label={t("ws.delete", { title: detail.title })}
          title={t("ws.delete", { title: detail.title })}
          onClick={() => window.confirm(t("ws.delete.confirm", { title: detail.title })) && actions.onDelete()}
        >
          <svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" focusable="false">
            <path
              d="M6 2h4l.5 1H13v1.5H3V3h2.5L6 2zm-2 3.5h8l-.6 8.5H4.6L4 5.5z"
              fill="currentColor"
            />
          </svg>
        </button>
      </header>
      {error && (
        <p className="panel-error" role="alert">
          {error}{" "}
          <button type="button" className="link" onClick={() => setError(null)}>
            {t("ws.dismiss")}
          </button>
        </p>
      )}
      {detail.binding_errors.length > 0 && (
        <details className="panel-warn">
          <summary>{t("ws.binding.errors", { count: detail.binding_errors.length })}</summary>
          <ul>
            {detail.binding_errors.map((e) => (
              <li key={e}>{e}</li>
            ))}
          </ul>
        </details>
      )}
      <PanelReview panelId={detail.id} title={detail.title} />
      <div className="panel-body">
        <RenderNodeView node={detail.render.root} onTrigger={onTrigger} panelId={detail.id} tools={detail.tools} />
      </div>
    </article>
  );
}
