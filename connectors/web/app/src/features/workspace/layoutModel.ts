// Pure operations on a workspace Layout (areas of panels). Every function returns a new
// layout; the view saves whatever comes out (debounced PUT).
import type { Area, Layout } from "../../api/panels";

export const MIN_SIZE = 0.1;
export const MAX_AREAS = 8;

export function emptyLayout(): Layout {
  return { version: 1, mode: "tile", areas: [{ id: "main", panels: [], active: null, size: 1 }] };
}

function newAreaId(layout: Layout): string {
  let n = layout.areas.length + 1;
  while (layout.areas.some((a) => a.id === `area-${n}`)) n += 1;
  return `area-${n}`;
}

/** Sizes that add up to 1, each at least MIN_SIZE; empty areas dropped (one is kept). */
export function normalise(layout: Layout): Layout {
  let areas = layout.areas.filter((a) => a.panels.length > 0);
  if (areas.length === 0) areas = [{ id: layout.areas[0]?.id ?? "main", panels: [], active: null, size: 1 }];
  const total = areas.reduce((s, a) => s + a.size, 0) || 1;
  areas = areas.map((a) => {
    const active = a.active && a.panels.includes(a.active) ? a.active : (a.panels[0] ?? null);
    return { ...a, active, size: round(Math.max(MIN_SIZE, a.size / total)) };
  });
  return { ...layout, areas };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function panelIds(layout: Layout): string[] {
  return layout.areas.flatMap((a) => a.panels);
}

export function areaOf(layout: Layout, panelId: string): Area | undefined {
  return layout.areas.find((a) => a.panels.includes(panelId));
}

/** Show ``panelId`` in ``areaId`` (the first area when missing) and make it active. */
export function addPanel(layout: Layout, panelId: string, areaId?: string): Layout {
  if (areaOf(layout, panelId)) return activate(layout, panelId);
  const target = layout.areas.find((a) => a.id === areaId) ?? layout.areas[0];
  if (!target) return normalise({ ...layout, areas: [{ id: "main", panels: [panelId], active: panelId, size: 1 }] });
  return {
    ...layout,
    areas: layout.areas.map((a) => (a.id === target.id ? { ...a, panels: [...a.panels, panelId], active: panelId } : a)),
  };
}

export function activate(layout: Layout, panelId: string): Layout {
  return {
    ...layout,
    areas: layout.areas.map((a) => (a.panels.includes(panelId) ? { ...a, active: panelId } : a)),
  };
}

/** Take the panel out of the layout (it stays in the workspace, listed in the library). */
export function closePanel(layout: Layout, panelId: string): Layout {
  return normalise({
    ...layout,
    areas: layout.areas.map((a) => ({ ...a, panels: a.panels.filter((p) => p !== panelId) })),
  });
}

/** Move a panel to another area, or to a new one at the right with ``"new"``. */
export function movePanel(layout: Layout, panelId: string, areaId: string | "new"): Layout {
  let areas = layout.areas.map((a) => ({ ...a, panels: a.panels.filter((p) => p !== panelId) }));
  if (areaId === "new") {
    if (areas.length >= MAX_AREAS) return layout;
    const size = 1 / (areas.filter((a) => a.panels.length > 0).length + 1);
    areas = areas.map((a) => ({ ...a, size: a.size * (1 - size) })); // room for the new one
    areas = [...areas, { id: newAreaId(layout), panels: [panelId], active: panelId, size }];
  } else {
    areas = areas.map((a) => (a.id === areaId ? { ...a, panels: [...a.panels, panelId], active: panelId } : a));
  }
  return normalise({ ...layout, areas });
}

/** Move the border after area ``index`` by ``delta`` (a fraction of the width). */
export function resize(layout: Layout, index: number, delta: number): Layout {
  const left = layout.areas[index];
  const right = layout.areas[index + 1];
  if (!left || !right) return layout;
  const pair = left.size + right.size;
  const next = Math.min(pair - MIN_SIZE, Math.max(MIN_SIZE, left.size + delta));
  const areas = layout.areas.map((a, i) =>
    i === index ? { ...a, size: round(next) } : i === index + 1 ? { ...a, size: round(pair - next) } : a,
  );
  return { ...layout, areas };
}

/** Only the panels in ``known`` (deleted ones go; closed ones were never there). */
export function keepKnown(layout: Layout, known: Set<string>): Layout {
  return normalise({
    ...layout,
    areas: layout.areas.map((a) => ({ ...a, panels: a.panels.filter((p) => known.has(p)) })),
  });
}
