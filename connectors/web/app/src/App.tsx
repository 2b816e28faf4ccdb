// The shell of GraphStudio: top bar (title, workspace switcher, navigation, language,
// connection), hash routing, and the views of every area. Views other than the
// workspace are loaded on demand so the first load stays small.
import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import { locale, setLocale, t, useLocale, type Locale } from "./i18n";
import { WorkspaceView } from "./features/workspace";
import { WorkspaceSwitcher, currentWorkspace, rememberWorkspace } from "./features/workspace/WorkspaceSwitcher";
import { subscribe, connectionState, type ConnectionState } from "./api/events";
import { api } from "./api/client";

// Each area's views by the contract's names, loaded on demand (one chunk per area).
const AssistantView = lazy(() => import("./features/assistant").then((m) => ({ default: m.AssistantView })));
const FilesView = lazy(() => import("./features/files").then((m) => ({ default: m.FilesView })));
const PatchesView = lazy(() => import("./features/patches").then((m) => ({ default: m.PatchesView })));
const DashboardView = lazy(() => import("./features/ops").then((m) => ({ default: m.DashboardView })));
const UsersView = lazy(() => import("./features/ops").then((m) => ({ default: m.UsersView })));
const MarketplaceView = lazy(() => import("./features/ops").then((m) => ({ default: m.MarketplaceView })));
const SettingsView = lazy(() => import("./features/ops").then((m) => ({ default: m.SettingsView })));
const FlowsView = lazy(() => import("./features/flows").then((m) => ({ default: m.FlowsView })));

export type Route =
  | { name: "workspace"; workspace: string; panel?: string }
  | { name: "assistant"; session?: string }
  | { name: "files"; workspace: string; path?: string }
  | { name: "patches"; patchId?: string }
  | { name: "flows"; flow?: string }
  | { name: "dashboard" | "users" | "marketplace" | "settings" };

/** The route of a location hash (``#/w/default``, ``#/files/default/notes/a.md``, …). */
export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [head, ...rest] = parts;
  switch (head) {
    case "assistant":
      return { name: "assistant", session: rest[0] || undefined };
    case "files":
      return { name: "files", workspace: rest[0] || currentWorkspace(), path: rest.slice(1).join("/") || undefined };
    case "patches":
      return { name: "patches", patchId: rest[0] || undefined };
    case "flows":
      return { name: "flows", flow: rest[0] || undefined };
    case "dashboard":
    case "users":
    case "marketplace":
    case "settings":
      return { name: head };
    case "w":
      return { name: "workspace", workspace: rest[0] || currentWorkspace(), panel: rest[1] || undefined };
    default:
      return { name: "workspace", workspace: currentWorkspace() };
  }
}

function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return parseRoute(hash);
}

const NAV: { key: string; route: Route["name"]; href: (ws: string) => string }[] = [
  { key: "nav.workspace", route: "workspace", href: (ws) => `#/w/${encodeURIComponent(ws)}` },
  { key: "nav.assistant", route: "assistant", href: () => "#/assistant" },
  { key: "nav.files", route: "files", href: (ws) => `#/files/${encodeURIComponent(ws)}` },
  { key: "nav.patches", route: "patches", href: () => "#/patches" },
  { key: "fl.nav", route: "flows", href: () => "#/flows" },
  { key: "nav.dashboard", route: "dashboard", href: () => "#/dashboard" },
  { key: "nav.users", route: "users", href: () => "#/users" },
  { key: "nav.marketplace", route: "marketplace", href: () => "#/marketplace" },
  { key: "nav.settings", route: "settings", href: () => "#/settings" },
];

function useConnection(): ConnectionState {
  const [state, setState] = useState<ConnectionState>(connectionState());
  useEffect(
    () =>
      subscribe((frame) => {
        if (frame.type === "connection") setState(frame.state);
      }),
    [],
  );
  return state;
}

function LanguageSwitch() {
  const current = useLocale();
  const options: { value: Locale; label: string }[] = [
    { value: "en", label: "EN" },
    { value: "ru", label: "RU" },
  ];
  return (
    <div className="lang-switch" role="group" aria-label={t("lang.switch")}>
      {options.map((o) => (
        <button
          key={o.value}
          type="button"
          lang={o.value}
          aria-pressed={current === o.value}
          title={t(`lang.${o.value}`)}
          onClick={() => setLocale(o.value)}
        >
          {o.label}
          <span className="visually-hidden"> {t(`lang.${o.value}`)}</span>
        </button>
      ))}
    </div>
  );
}

function View({ route }: { route: Route }) {
  switch (route.name) {
    case "workspace":
      return <WorkspaceView workspace={route.workspace} focus={route.panel} />;
    case "assistant":
      return <AssistantView session={route.session} />;
    case "files":
      return <FilesView workspace={route.workspace} path={route.path} />;
    case "patches":
      return <PatchesView patchId={route.patchId} />;
    case "flows":
      return <FlowsView name={route.flow} />;
    case "dashboard":
      return <DashboardView />;
    case "users":
      return <UsersView />;
    case "marketplace":
      return <MarketplaceView />;
    case "settings":
      return <SettingsView />;
  }
}

export function App() {
  useLocale();
  const route = useRoute();
  const connection = useConnection();
  const [menuOpen, setMenuOpen] = useState(false);
  const mainRef = useRef<HTMLElement>(null);
  const workspace = "workspace" in route ? route.workspace : currentWorkspace();

  useEffect(() => {
    document.documentElement.lang = locale();
    document.title = `${t(NAV.find((n) => n.route === route.name)?.key ?? "nav.workspace")} · ${t("app.title")}`;
  });
  useEffect(() => {
    // No language chosen on this browser yet: the one the user set in a chat (/lang) wins
    // over the browser's.
    if (localStorage.getItem("nexflow.locale")) return;
    api<{ language?: string | null }>("/api/v1/status").then(
      (s) => (s.language === "en" || s.language === "ru") && s.language !== locale() && setLocale(s.language),
      () => undefined,
    );
  }, []);
  useEffect(() => {
    if ("workspace" in route) rememberWorkspace(route.workspace);
    setMenuOpen(false);
  }, [route.name, workspace]); // the route object is new on every render

  const switchTo = useCallback(
    (ws: string) => {
      rememberWorkspace(ws);
      location.hash = route.name === "files" ? `#/files/${encodeURIComponent(ws)}` : `#/w/${encodeURIComponent(ws)}`;
    },
    [route.name],
  );

  return (
    <div className="shell">
      <a
        className="skip-link"
        href="#main"
        onClick={(e) => {
          e.preventDefault(); // the hash is the route: focus the content instead
          mainRef.current?.focus();
        }}
      >
        {t("app.skip")}
      </a>
      <header className="topbar">
        <p className="brand">{t("app.title")}</p>
        <WorkspaceSwitcher current={workspace} onSwitch={switchTo} />
        <button
          type="button"
          className="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="app-nav"
          onClick={() => setMenuOpen((o) => !o)}
        >
          {t("nav.menu")}
        </button>
        <nav id="app-nav" aria-label={t("nav.label")} data-open={menuOpen}>
          <ul>
            {NAV.map((n) => (
              <li key={n.key}>
                <a href={n.href(workspace)} aria-current={route.name === n.route ? "page" : undefined}>
                  {t(n.key)}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span className="spacer" />
        <span className={`conn ${connection}`} role="status" data-testid="connection">
          {t(`conn.${connection}`)}
        </span>
        <LanguageSwitch />
      </header>
      <main id="main" ref={mainRef} tabIndex={-1}>
        <Suspense fallback={<p className="muted">{t("app.loading")}</p>}>
          <View route={route} />
        </Suspense>
      </main>
    </div>
  );
}
