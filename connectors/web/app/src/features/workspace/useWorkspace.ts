// The state of one open workspace: its layout (saved debounced), its panels with their
// resolved render trees, kept live by /ws/events, and the toasts to announce.
import { useCallback, useEffect, useRef, useState } from "react";
import { subscribe } from "../../api/events";
import {
  getLayout,
  getPanel,
  listPanels,
  putLayout,
  type Layout,
  type PanelDetail,
  type PanelSummary,
} from "../../api/panels";
import { ApiError } from "../../api/client";
import { addPanel, keepKnown, panelIds } from "./layoutModel";

export interface Toast {
  id: number;
  text: string;
  tone: "info" | "error";
}

const SAVE_DELAY_MS = 400;
const OWN_SAVE_MS = 2000; // a layout.updated this soon after our own PUT is our own

export function useWorkspace(workspace: string) {
  const [layout, setLayoutState] = useState<Layout | null>(null);
  const [panels, setPanels] = useState<Record<string, PanelDetail>>({});
  const [summaries, setSummaries] = useState<PanelSummary[]>([]);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [saveError, setSaveError] = useState<string | null>(null);
  const layoutRef = useRef<Layout | null>(null);
  const saveTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const lastSave = useRef(0);
  const toastId = useRef(0);

  const toast = useCallback((text: string, tone: Toast["tone"] = "info") => {
    const id = ++toastId.current;
    setToasts((list) => [...list.slice(-4), { id, text, tone }]);
    setTimeout(() => setToasts((list) => list.filter((x) => x.id !== id)), 6000);
  }, []);

  const fetchPanel = useCallback(async (id: string) => {
    try {
      const detail = await getPanel(id);
      setPanels((all) => {
        const have = all[id];
        return have && have.version > detail.version ? all : { ...all, [id]: detail };
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        setPanels((all) => {
          const { [id]: _gone, ...rest } = all;
          void _gone;
          return rest;
        });
      }
    }
  }, []);

  const save = useCallback(
    (next: Layout) => {
      clearTimeout(saveTimer.current);
      saveTimer.current = setTimeout(() => {
        lastSave.current = Date.now();
        putLayout(workspace, next).then(
          () => setSaveError(null),
          (err: unknown) => setSaveError(err instanceof ApiError ? err.message : String(err)),
        );
      }, SAVE_DELAY_MS);
    },
    [workspace],
  );

  /** Change the layout (``fn`` of the current one) and save it. */
  const update = useCallback(
    (fn: (l: Layout) => Layout) => {
      const current = layoutRef.current;
      if (!current) return;
      const next = fn(current);
      if (next === current) return;
      layoutRef.current = next;
      setLayoutState(next);
      save(next);
    },
    [save],
  );

  const load = useCallback(async () => {
    try {
      const [saved, all] = await Promise.all([getLayout(workspace), listPanels()]);
      const mine = all.filter((p) => p.workspace === workspace);
      const known = new Set(mine.map((p) => p.id));
      const clean = keepKnown(saved, known);
      layoutRef.current = clean;
      setLayoutState(clean);
      setSummaries(mine);
      setError(null);
      await Promise.all(panelIds(clean).map(fetchPanel));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }, [workspace, fetchPanel]);

  useEffect(() => {
    setLayoutState(null);
    layoutRef.current = null;
    setPanels({});
    void load();
    return () => clearTimeout(saveTimer.current);
  }, [load]);

  useEffect(
    () =>
      subscribe((frame) => {
        switch (frame.type) {
          case "panel.updated":
            setPanels((all) => {
              const have = all[frame.panel_id];
              if (!have || have.version > frame.version) return all;
              return {
                ...all,
                [frame.panel_id]: {
                  ...have,
                  version: frame.version,
                  state: frame.state,
                  render: frame.render,
                  binding_errors: frame.binding_errors,
                },
              };
            });
            break;
          case "panel.created":
            if (frame.panel.workspace !== workspace) break;
            setSummaries((list) => (list.some((p) => p.id === frame.panel.id) ? list : [...list, frame.panel]));
            update((l) => addPanel(l, frame.panel.id));
            void fetchPanel(frame.panel.id);
            break;
          case "panel.deleted":
            setSummaries((list) => list.filter((p) => p.id !== frame.panel_id));
            update((l) => (panelIds(l).includes(frame.panel_id) ? keepKnown(l, new Set(panelIds(l).filter((p) => p !== frame.panel_id))) : l));
            break;
          case "toast":
            if (layoutRef.current && panelIds(layoutRef.current).includes(frame.panel_id)) toast(frame.message);
            break;
          case "layout.updated":
            if (frame.workspace === workspace && Date.now() - lastSave.current > OWN_SAVE_MS) void load();
            break;
          case "connection":
            if (frame.state === "open" && layoutRef.current) void load(); // re-read what was missed
            break;
        }
      }),
    [workspace, update, fetchPanel, load, toast],
  );

  return { layout, panels, summaries, toasts, error, saveError, update, fetchPanel, toast, setSummaries };
}
