import { t, useLocale } from "./i18n";
import { WorkspaceView } from "./features/workspace";

export function App() {
  useLocale();
  return (
    <main>
      <h1>{t("app.title")}</h1>
      <WorkspaceView />
    </main>
  );
}
