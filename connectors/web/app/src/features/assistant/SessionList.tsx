// The conversation list: newest first, a search over their text (debounced), a button
// for a new conversation. The open one is marked with aria-current.
import { useEffect, useState } from "react";
import { locale, t } from "../../i18n";
import { listSessions, type SessionItem } from "./api";

function when(ts: number): string {
  const d = new Date(ts * 1000);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString(locale());
}

export function SessionList({
  current,
  refresh,
  onNew,
}: {
  current: string | null;
  refresh: number;
  onNew: () => void;
}) {
  const [query, setQuery] = useState("");
  const [items, setItems] = useState<SessionItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let alive = true;
    const timer = setTimeout(() => {
      listSessions(query).then(
        (found) => {
          if (!alive) return;
          setItems(found);
          setError(null);
        },
        (err: unknown) => alive && setError(String((err as Error).message ?? err)),
      );
    }, query ? 250 : 0);
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [query, refresh, current]);

  return (
    <nav className="as-sessions" aria-label={t("as.sessions")}>
      <button type="button" className="as-primary as-new" onClick={onNew}>
        {t("as.new")}
      </button>
      <div className="as-search">
        <label htmlFor="as-search" className="visually-hidden">
          {t("as.search.label")}
        </label>
        <input
          id="as-search"
          type="search"
          value={query}
          placeholder={t("as.search.placeholder")}
          onChange={(e) => setQuery(e.target.value)}
        />
      </div>
      {error && (
        <p className="as-error" role="alert">
          {error}
        </p>
      )}
      {items !== null && items.length === 0 && (
        <p className="as-empty">{query ? t("as.search.none") : t("as.sessions.none")}</p>
      )}
      <ul>
        {(items ?? []).map((s) => (
          <li key={s.id}>
            <a
              href={`#/assistant/${encodeURIComponent(s.id)}`}
              aria-current={s.id === current ? "page" : undefined}
            >
              <span className="as-title">{s.title || t("as.untitled")}</span>
              <span className="as-meta">
                {when(s.updated_at)} · {t("as.messages", { count: s.messages })}
                {s.channel !== "web" ? ` · ${s.channel}` : ""}
              </span>
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}
