// The panel library: add a panel from a template to the workspace, or show again a panel
// of the workspace that is not laid out. A modal <dialog> (focus is kept inside).
import { useEffect, useRef, useState } from "react";
import { t } from "../../i18n";
import { ApiError } from "../../api/client";
import { createPanel, listTemplates, type PanelSummary } from "../../api/panels";

export function Library({
  open,
  workspace,
  hidden,
  onClose,
  onCreated,
  onShow,
}: {
  open: boolean;
  workspace: string;
  hidden: PanelSummary[];
  onClose: () => void;
  onCreated: (panel: PanelSummary) => void;
  onShow: (panelId: string) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [templates, setTemplates] = useState<string[] | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) {
      d.showModal();
      setError(null);
      listTemplates().then(
        (list) => setTemplates(list.map((x) => x.name)),
        (err: unknown) => setError(err instanceof ApiError ? err.message : String(err)),
      );
    } else if (!open && d.open) d.close();
  }, [open]);

  async function add(template: string) {
    setBusy(template);
    setError(null);
    try {
      onCreated(await createPanel(template, workspace));
      onClose();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(null);
    }
  }

  return (
    <dialog ref={dialog} className="library" aria-labelledby="library-title" onClose={onClose}>
      <h2 id="library-title">{t("ws.library")}</h2>
      {error && (
        <p role="alert" className="panel-error">
          {error}
        </p>
      )}
      <h3>{t("ws.library.templates")}</h3>
      {templates === null ? (
        <p className="muted">{t("ws.loading")}</p>
      ) : (
        <ul className="library-list">
          {templates.map((name) => (
            <li key={name}>
              <button type="button" onClick={() => void add(name)} disabled={busy !== null} data-template={name}>
                {t(`ws.template.${name}`) === `ws.template.${name}` ? name : t(`ws.template.${name}`)}
              </button>
            </li>
          ))}
        </ul>
      )}
      {hidden.length > 0 && (
        <>
          <h3>{t("ws.library.hidden")}</h3>
          <ul className="library-list">
            {hidden.map((p) => (
              <li key={p.id}>
                <button
                  type="button"
                  onClick={() => {
                    onShow(p.id);
                    onClose();
                  }}
                >
                  {t("ws.library.show", { title: p.title })}
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
      <form method="dialog">
        <button type="submit">{t("ws.close.dialog")}</button>
      </form>
    </dialog>
  );
}
