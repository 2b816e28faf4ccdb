// An area of the workspace: a tab strip of its panels (arrow keys move between tabs)
// and the active panel below it.
import { useRef, type KeyboardEvent } from "react";
import { t } from "../../i18n";
import type { Area, PanelDetail } from "../../api/panels";
import { PanelFrame, type PanelActions } from "./PanelFrame";

export interface AreaProps {
  area: Area;
  label: string;
  panels: Record<string, PanelDetail>;
  onActivate: (panelId: string) => void;
  actionsFor: (panelId: string, areaId: string) => PanelActions;
  style?: React.CSSProperties;
}

export function AreaView({ area, label, panels, onActivate, actionsFor, style }: AreaProps) {
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);
  const active = area.active ?? area.panels[0] ?? null;
  function onKey(e: KeyboardEvent, index: number) {
    const n = area.panels.length;
    const next =
      e.key === "ArrowRight" ? (index + 1) % n : e.key === "ArrowLeft" ? (index - 1 + n) % n : e.key === "Home" ? 0 : e.key === "End" ? n - 1 : -1;
    if (next < 0) return;
    e.preventDefault();
    onActivate(area.panels[next]);
    tabs.current[next]?.focus();
  }
  const detail = active ? panels[active] : undefined;
  return (
    <section className="area" aria-label={label} style={style} data-area={area.id}>
      {area.panels.length === 0 ? (
        <p className="muted area-empty">{t("ws.area.empty")}</p>
      ) : (
        <>
          <div className="tabs" role="tablist" aria-label={label}>
            {area.panels.map((id, i) => (
              <button
                key={id}
                ref={(el) => {
                  tabs.current[i] = el;
                }}
                type="button"
                role="tab"
                id={`tab-${id}`}
                aria-selected={id === active}
                aria-controls={`tabpanel-${area.id}`}
                tabIndex={id === active ? 0 : -1}
                onClick={() => onActivate(id)}
                onKeyDown={(e) => onKey(e, i)}
              >
                {panels[id]?.title ?? t("ws.loading")}
              </button>
            ))}
          </div>
          <div role="tabpanel" id={`tabpanel-${area.id}`} aria-labelledby={active ? `tab-${active}` : undefined} className="area-body">
            {detail ? <PanelFrame key={detail.id} detail={detail} actions={actionsFor(detail.id, area.id)} /> : <p className="muted">{t("ws.loading")}</p>}
          </div>
        </>
      )}
    </section>
  );
}
