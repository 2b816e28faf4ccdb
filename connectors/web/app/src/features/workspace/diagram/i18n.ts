// The flowchart editor's strings (English and Russian). Kept next to the editor, which is
// loaded on demand, so they travel in its chunk; looked up in the app's current locale.
import { locale } from "../../../i18n";

type Entry = string | { one: string; few?: string; many?: string; other: string };

const strings: Record<string, { en: Entry; ru: Entry }> = {
  "ws.diagram.canvas": { en: "Flowchart canvas", ru: "Холст блок-схемы" },
  "ws.diagram.toolbar": { en: "Flowchart tools", ru: "Инструменты блок-схемы" },
  "ws.diagram.new_label": { en: "New node label", ru: "Подпись нового узла" },
  "ws.diagram.add": { en: "Add node", ru: "Добавить узел" },
  "ws.diagram.add_after": { en: "Add after selected", ru: "Добавить после выбранного" },
  "ws.diagram.connect_to": { en: "Connect selected to", ru: "Соединить выбранный с" },
  "ws.diagram.connect": { en: "Connect", ru: "Соединить" },
  "ws.diagram.choose": { en: "choose a node", ru: "выберите узел" },
  "ws.diagram.rename": { en: "Rename", ru: "Переименовать" },
  "ws.diagram.delete": { en: "Delete", ru: "Удалить" },
  "ws.diagram.fit": { en: "Fit to view", ru: "Показать всё" },
  "ws.diagram.selected": { en: "Selected: {name}", ru: "Выбрано: {name}" },
  "ws.diagram.nothing_selected": { en: "Nothing selected", ru: "Ничего не выбрано" },
  "ws.diagram.edit_node": { en: "Label of node {name}", ru: "Подпись узла {name}" },
  "ws.diagram.edit_edge": { en: "Label of arrow {name}", ru: "Подпись стрелки {name}" },
  "ws.diagram.node": { en: "Node {name}", ru: "Узел {name}" },
  "ws.diagram.edge": { en: "Arrow {name}", ru: "Стрелка {name}" },
  "ws.diagram.summary": {
    en: { one: "{count} node", other: "{count} nodes" },
    ru: { one: "{count} узел", few: "{count} узла", many: "{count} узлов", other: "{count} узла" },
  },
  "ws.diagram.failed": { en: "Not saved: {message}", ru: "Не сохранено: {message}" },
  "ws.diagram.hint": {
    en: "Drag nodes to move them, drag from a handle to another node to connect, double-click a label to rename, Delete removes the selection.",
    ru: "Перетаскивайте узлы, тяните от точки к другому узлу, чтобы соединить, дважды щёлкните подпись, чтобы переименовать; Delete удаляет выбранное.",
  },
  "ws.diagram.a11y.node": {
    en: "Press Enter or Space to select a node, then the arrow keys to move it. Delete removes it, Escape cancels.",
    ru: "Enter или пробел выбирают узел, стрелки двигают его. Delete удаляет, Escape отменяет.",
  },
  "ws.diagram.a11y.edge": {
    en: "Press Enter or Space to select an arrow, then Delete to remove it or Escape to cancel.",
    ru: "Enter или пробел выбирают стрелку, Delete удаляет её, Escape отменяет.",
  },
  "ws.diagram.a11y.moved": { en: "Moved to {x}, {y}", ru: "Перемещено в {x}, {y}" },
  "ws.diagram.controls": { en: "Zoom controls", ru: "Масштаб" },
  "ws.diagram.zoom_in": { en: "Zoom in", ru: "Увеличить" },
  "ws.diagram.zoom_out": { en: "Zoom out", ru: "Уменьшить" },
  "ws.diagram.lock": { en: "Lock editing", ru: "Запретить правку" },
  "ws.diagram.handle": { en: "Connection point", ru: "Точка соединения" },
  "ws.diagram.no_tools": {
    en: "This panel has no editing tools; the chart is read-only.",
    ru: "У этой панели нет инструментов правки; схема только для чтения.",
  },
};

/** The string for ``key`` in the app's locale, ``{name}`` filled, ``count`` picks the plural. */
export function td(key: string, vars: Record<string, string | number> = {}): string {
  const item = strings[key];
  let entry: Entry = item ? item[locale()] : key;
  if (typeof entry !== "string") {
    const form = new Intl.PluralRules(locale()).select(Number(vars.count ?? 0));
    entry = (entry as Record<string, string | undefined>)[form] ?? entry.other;
  }
  return entry.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

export const diagramStrings = strings;
