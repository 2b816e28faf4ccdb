// The workspace switcher of the top bar: the caller's workspaces, and a new one.
import { useEffect, useState, type FormEvent } from "react";
import { t } from "../../i18n";
import { ApiError } from "../../api/client";
import { createWorkspace, listWorkspaces, type WorkspaceInfo } from "../../api/panels";
import { subscribe } from "../../api/events";

const KEY = "nexflow.workspace";

export function currentWorkspace(): string {
  return localStorage.getItem(KEY) || "default";
}

export function rememberWorkspace(name: string): void {
  localStorage.setItem(KEY, name);
}

export function WorkspaceSwitcher({ current, onSwitch }: { current: string; onSwitch: (ws: string) => void }) {
  const [items, setItems] = useState<WorkspaceInfo[]>([]);
  const [adding, setAdding] = useState(false);
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const load = () =>
      listWorkspaces()
        .then((list) => live && setItems(list))
        .catch(() => undefined);
    load();
    const stop = subscribe((f) => {
      if (f.type === "panel.created" || f.type === "panel.deleted") load();
    });
    return () => {
      live = false;
      stop();
    };
  }, []);

  const names = items.some((w) => w.name === current) ? items : [...items, { name: current, default: false, panels: 0 }];

  async function create(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const made = await createWorkspace(name.trim());
      setItems((list) => [...list, made].sort((a, b) => a.name.localeCompare(b.name)));
      setAdding(false);
      setName("");
      onSwitch(made.name);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  if (adding) {
    return (
      <form className="ws-switch" onSubmit={create}>
        <label className="visually-hidden" htmlFor="ws-new-name">
          {t("ws.new.name")}
        </label>
        <input
          id="ws-new-name"
          autoFocus
          value={name}
          pattern="[a-z0-9][a-z0-9_\-]{0,31}"
          placeholder={t("ws.new.placeholder")}
          aria-describedby={error ? "ws-new-error" : undefined}
          onChange={(e) => setName(e.target.value.toLowerCase())}
          onKeyDown={(e) => e.key === "Escape" && setAdding(false)}
        />
        <button type="submit" className="primary" disabled={!name.trim()}>
          {t("ws.new.create")}
        </button>
        <button type="button" onClick={() => setAdding(false)}>
          {t("ws.cancel")}
        </button>
        {error && (
          <span id="ws-new-error" role="alert" className="ws-error">
            {error}
          </span>
        )}
      </form>
    );
  }
  return (
    <div className="ws-switch">
      <label className="visually-hidden" htmlFor="ws-select">
        {t("ws.switch")}
      </label>
      <select id="ws-select" value={current} onChange={(e) => onSwitch(e.target.value)}>
        {names.map((w) => (
          <option key={w.name} value={w.name}>
            {w.name} ({t("ws.panels.count", { count: w.panels })})
          </option>
        ))}
      </select>
      <button type="button" aria-label={t("ws.new")} title={t("ws.new")} onClick={() => setAdding(true)}>
        +
      </button>
    </div>
  );
}
