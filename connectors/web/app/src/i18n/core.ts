import type { Dictionary } from "./index";

export const core: Dictionary = {
  "app.title": { en: "GraphStudio", ru: "GraphStudio" },
  "nav.workspace": { en: "Workspace", ru: "Рабочая область" },
  "nav.assistant": { en: "Assistant", ru: "Ассистент" },
  "nav.files": { en: "Files", ru: "Файлы" },
  "nav.patches": { en: "Patches", ru: "Патчи" },
  "nav.dashboard": { en: "Dashboard", ru: "Панель управления" },
  "nav.settings": { en: "Settings", ru: "Настройки" },
  "lang.switch": { en: "Language", ru: "Язык" },
};
