// The workspace of panels (route #/w/<workspace>): areas side by side (tile) or one tab
// strip (tabs), a panel library, layout saved per workspace, panels live over /ws/events.
import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import { t, useLocale } from "../../i18n";
import { deletePanel, type Area } from "../../api/panels";
import { ApiError } from "../../api/client";
import { AreaView } from "./AreaView";
import { Library } from "./Library";
import { Splitter } from "./Splitter";
import { Toasts } from "./Toasts";
import { useWorkspace } from "./useWorkspace";
import { activate, addPanel, closePanel, movePanel, panelIds, resize } from "./layoutModel";
import type { PanelActions } from "./PanelFrame";
import "./workspace.css";

export { RenderNodeView, REGISTRY } from "./registry";

// The assistant docked beside the panels (loaded when first shown).
const AssistantPanel = lazy(() =>
  import("../assistant").then((m) => ({ default: m.AssistantPanel })),
);
const DOCK_KEY = "nexflow.assistantDock";
export type { NodeProps, TriggerFn } from "./types";

export function WorkspaceView({ workspace = "default", focus }: { workspace?: string; focus?: string }) {
  useLocale();
  const ws = useWorkspace(workspace);
  const { layout, panels, summaries, update, toast } = ws;
  const [libraryOpen, setLibraryOpen] = useState(false);
  const [focusArea, setFocusArea] = useState<string | null>(null);
  const [dock, setDock] = useState(() => localStorage.getItem(DOCK_KEY) === "1");
  const areasBox = useRef<HTMLDivElement>(null);
  const focused = useRef<string | null>(null);

  // #/w/<workspace>/<panel> (a chat's "Open panel"): show that panel, active, in view.
  useEffect(() => {
    if (!layout || !focus || focused.current === focus) return;
    if (!summaries.some((p) => p.id === focus)) return; // not (yet) known: not this user's
    focused.current = focus;
    if (panelIds(layout).includes(focus)) update((l) => activate(l, focus));
    else {
      update((l) => addPanel(l, focus, l.areas[0]?.id));
      void ws.fetchPanel(focus);
    }
  }, [focus, layout, summaries, update, ws]);

  useEffect(() => {
    if (!focus) return;
    // The panel's frame may be drawn again as its render arrives: focus its heading until
    // it holds focus for a few ticks, unless the user has moved on meanwhile.
    let ticks = 0;
    let held = 0;
    const timer = window.setInterval(() => {
      const heading = document.querySelector<HTMLElement>(`article[data-panel="${CSS.escape(focus)}"] h2`);
      const idle = document.activeElement === document.body || document.activeElement === null;
      if (heading && document.activeElement === heading) held += 1;
      else if (heading && idle) {
        if (ticks === 0 || held === 0) heading.scrollIntoView({ block: "nearest" });
        heading.setAttribute("tabindex", "-1");
        heading.focus();
      }
      if (held >= 3 || ++ticks > 60) window.clearInterval(timer);
    }, 100);
    return () => window.clearInterval(timer);
  }, [focus]);

  const toggleDock = () =>
    setDock((open) => {
      localStorage.setItem(DOCK_KEY, open ? "0" : "1");
      return !open;
    });

  const areaLabel = useCallback((_area: Area, i: number) => t("ws.area", { n: i + 1 }), []);

  const actionsFor = useCallback(
    (panelId: string, areaId: string): PanelActions => ({
      areaId,
      areas: (layout?.areas ?? []).map((a, i) => ({ id: a.id, label: areaLabel(a, i) })),
      onMove: (to) => update((l) => movePanel(l, panelId, to)),
      onClose: () => update((l) => closePanel(l, panelId)),
      onDelete: () => {
        deletePanel(panelId).then(
          () => update((l) => closePanel(l, panelId)),
          (err: unknown) => toast(err instanceof ApiError ? err.message : String(err), "error"),
        );
      },
      onRefresh: () => void ws.fetchPanel(panelId),
      onToast: (text) => toast(text),
    }),
    [layout, update, toast, ws, areaLabel],
  );

  if (ws.error) {
    return (
      <div className="workspace">
        <p role="alert" className="panel-error">
          {ws.error}
        </p>
      </div>
    );
  }
  if (!layout) return <p className="muted workspace">{t("ws.loading")}</p>;

  const shown = new Set(panelIds(layout));
  const hidden = summaries.filter((p) => !shown.has(p.id));
  const total = layout.areas.reduce((s, a) => s + a.size, 0) || 1;
  const activeArea = layout.areas.find((a) => a.id === focusArea)?.id ?? layout.areas[0]?.id;
  const tabsMode = layout.mode === "tabs";
  // In tabs mode every panel is one tab of a single strip.
  const areas: Area[] = tabsMode
    ? [{ id: "all", panels: panelIds(layout), active: layout.areas.find((a) => a.id === focusArea)?.active ?? layout.areas[0]?.active ?? null, size: 1 }]
    : layout.areas;

  return (
    <div className="workspace" data-workspace={workspace} data-mode={layout.mode}>
      <div className="ws-toolbar">
        <h1>{t("ws.title", { name: workspace })}</h1>
        <div role="group" aria-label={t("ws.mode")} className="ws-mode">
          {(["tile", "tabs"] as const).map((m) => (
            <button key={m} type="button" aria-pressed={layout.mode === m} onClick={() => update((l) => ({ ...l, mode: m }))}>
              {t(`ws.mode.${m}`)}
            </button>
          ))}
        </div>
        <button type="button" className="primary" onClick={() => setLibraryOpen(true)}>
          {t("ws.add")}
        </button>
        <button type="button" aria-pressed={dock} onClick={toggleDock}>
          {t("ws.assistant")}
        </button>
        {ws.saveError && (
          <span role="alert" className="ws-save-error">
            {t("ws.save.failed", { message: ws.saveError })}
          </span>
        )}
      </div>
      <div className="ws-main">
      {shown.size === 0 ? (
        <div className="ws-empty">
          <p>{t("ws.empty.workspace")}</p>
          <button type="button" className="primary" onClick={() => setLibraryOpen(true)}>
            {t("ws.add")}
          </button>
        </div>
      ) : (
        <div className="areas" ref={areasBox}>
          {areas.map((area, i) => (
            <div key={area.id} className="area-slot" style={{ flexGrow: tabsMode ? 1 : area.size / total }} onFocusCapture={() => !tabsMode && setFocusArea(area.id)}>
              <AreaView
                area={area}
                label={tabsMode ? t("ws.panels") : areaLabel(area, i)}
                panels={panels}
                onActivate={(id) => {
                  update((l) => activate(l, id));
                  if (tabsMode) setFocusArea(layout.areas.find((a) => a.panels.includes(id))?.id ?? null);
                }}
                actionsFor={actionsFor}
              />
              {!tabsMode && i < areas.length - 1 && (
                <Splitter
                  value={area.size / (area.size + areas[i + 1].size)}
                  container={() => areasBox.current}
                  onResize={(delta) => update((l) => resize(l, i, delta))}
                />
              )}
            </div>
          ))}
        </div>
      )}
      {dock && (
        <aside className="ws-dock">
          <Suspense fallback={<p className="muted">{t("ws.loading")}</p>}>
            <AssistantPanel />
          </Suspense>
        </aside>
      )}
      </div>
      <Library
        open={libraryOpen}
        workspace={workspace}
        hidden={hidden}
        onClose={() => setLibraryOpen(false)}
        onCreated={(p) => {
          ws.setSummaries((list) => (list.some((x) => x.id === p.id) ? list : [...list, p]));
          update((l) => addPanel(l, p.id, activeArea));
          void ws.fetchPanel(p.id);
        }}
        onShow={(id) => {
          update((l) => addPanel(l, id, activeArea));
          void ws.fetchPanel(id);
        }}
      />
      <Toasts toasts={ws.toasts} />
    </div>
  );
}
