// The AI assistant: AssistantView (route #/assistant/<session?>: conversation list with
// search, and the open conversation) and AssistantPanel (the same chat, compact, for the
// workspace to dock; it keeps its conversation in localStorage).
import { useCallback, useEffect, useRef, useState } from "react";
import { t, useLocale } from "../../i18n";
import { Conversation } from "./Conversation";
import { SessionList } from "./SessionList";
import { useChat } from "./useChat";
import "./assistant.css";

export { humaniseTool } from "./Conversation";

const PANEL_KEY = "nexflow.assistant.session";

export function AssistantView({ session }: { session?: string }) {
  useLocale();
  const [refresh, setRefresh] = useState(0);
  const [fresh, setFresh] = useState(0); // a new conversation even when the route is unchanged
  const onSession = useCallback((id: string) => {
    if (location.hash !== `#/assistant/${encodeURIComponent(id)}`) {
      location.replace(`#/assistant/${encodeURIComponent(id)}`);
    }
    setRefresh((n) => n + 1);
  }, []);
  return (
    <div className="as-view">
      <h1 className="visually-hidden">{t("as.title")}</h1>
      <SessionList
        current={session ?? null}
        refresh={refresh}
        onNew={() => {
          setFresh((n) => n + 1);
          location.hash = "#/assistant";
        }}
      />
      <ChatPane
        key={fresh}
        session={session ?? null}
        onSession={onSession}
        onIdle={() => setRefresh((n) => n + 1)}
      />
    </div>
  );
}

function ChatPane({
  session,
  onSession,
  onIdle,
}: {
  session: string | null;
  onSession: (id: string) => void;
  onIdle: () => void;
}) {
  const chat = useChat(session, onSession);
  const idle = useRef(onIdle);
  idle.current = onIdle;
  useEffect(() => {
    if (!chat.running) idle.current(); // a turn ended: the list's counts and order changed
  }, [chat.running]);
  return (
    <section className="as-main" aria-label={t("as.conversation")}>
      <Conversation chat={chat} />
    </section>
  );
}

/** The assistant as a dockable panel of the workspace. */
export function AssistantPanel() {
  useLocale();
  const [session, setSession] = useState<string | null>(() => localStorage.getItem(PANEL_KEY));
  const [generation, setGeneration] = useState(0);
  const onSession = useCallback((id: string) => localStorage.setItem(PANEL_KEY, id), []);
  return (
    <section className="as-dock" aria-label={t("as.title")}>
      <div className="as-dock-bar">
        <button
          type="button"
          onClick={() => {
            localStorage.removeItem(PANEL_KEY);
            setSession(null);
            setGeneration((n) => n + 1);
          }}
        >
          {t("as.new")}
        </button>
        <a href={session ? `#/assistant/${encodeURIComponent(session)}` : "#/assistant"}>{t("as.openFull")}</a>
      </div>
      <DockChat key={generation} session={session} onSession={(id) => (onSession(id), setSession(id))} />
    </section>
  );
}

function DockChat({ session, onSession }: { session: string | null; onSession: (id: string) => void }) {
  const chat = useChat(session, onSession);
  return <Conversation chat={chat} compact />;
}
