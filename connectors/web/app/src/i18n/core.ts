import type { Dictionary } from "./index";

// The shell: title, navigation, language and connection.
export const core: Dictionary = {
  "app.title": { en: "GraphStudio", ru: "GraphStudio" },
  "app.skip": { en: "Skip to content", ru: "Перейти к содержимому" },
  "app.loading": { en: "Loading…", ru: "Загрузка…" },
  "nav.label": { en: "Main", ru: "Основная навигация" },
  "nav.menu": { en: "Menu", ru: "Меню" },
  "nav.workspace": { en: "Workspace", ru: "Рабочая область" },
  "nav.assistant": { en: "Assistant", ru: "Ассистент" },
  "nav.files": { en: "Files", ru: "Файлы" },
  "nav.patches": { en: "Patches", ru: "Патчи" },
  "nav.dashboard": { en: "Dashboard", ru: "Панель управления" },
  "nav.users": { en: "Users", ru: "Пользователи" },
  "nav.marketplace": { en: "Marketplace", ru: "Маркетплейс" },
  "nav.settings": { en: "Settings", ru: "Настройки" },
  "lang.switch": { en: "Language", ru: "Язык" },
  "lang.en": { en: "English", ru: "English (английский)" },
  "lang.ru": { en: "Русский (Russian)", ru: "Русский" },
  "conn.connecting": { en: "Connecting…", ru: "Подключение…" },
  "conn.open": { en: "Live", ru: "В сети" },
  "conn.closed": { en: "Offline, reconnecting", ru: "Нет связи, переподключение" },
};
