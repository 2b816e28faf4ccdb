// One conversation: its messages, tool lines in plain words, cards, the composer (Enter
// sends, Shift+Enter a new line) and Stop while a turn runs. The composer stays at the
// bottom of the view and Send is never disabled: a card never hides it.
import { useEffect, useRef, useState, type KeyboardEvent } from "react";
import { t } from "../../i18n";
import { Card } from "./cards";
import { RichText } from "./RichText";
import type { Chat, Entry } from "./useChat";

/** A tool's name made readable when the gateway sent no label. */
export function humaniseTool(name: string): string {
  const words = (s: string) => s.replace(/[_-]+/g, " ").trim();
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const parts = name.split("__");
  if (parts.length >= 4) return `${cap(words(parts[2]))}: ${words(parts[parts.length - 1])}`;
  if (parts.length === 2) return `${cap(words(parts[0]))}: ${words(parts[1])}`;
  return cap(words(name));
}

function Entries({ entries }: { entries: Entry[] }) {
  const labels = new Map<string, string>();
  return (
    <>
      {entries.map((e) => {
        switch (e.kind) {
          case "user":
            return (
              <div key={e.key} className={`as-msg as-user${e.pending ? " pending" : ""}`}>
                <span className="visually-hidden">{t("as.you")}: </span>
                {e.text}
              </div>
            );
          case "assistant":
            return (
              <div key={e.key} className="as-msg as-assistant" aria-busy={e.streaming || undefined}>
                <span className="visually-hidden">{t("as.assistant")}: </span>
                <RichText text={e.text} streaming={e.streaming} />
              </div>
            );
          case "tool_call": {
            const label = e.label || humaniseTool(e.name);
            labels.set(e.name, label);
            return (
              <div key={e.key} className="as-tool" title={e.name}>
                <span aria-hidden="true">⚙ </span>
                {label}
              </div>
            );
          }
          case "tool_result": {
            const label = labels.get(e.name) ?? humaniseTool(e.name);
            return (
              <details key={e.key} className={`as-tool as-result ${e.ok ? "ok" : "failed"}`}>
                <summary>
                  <span aria-hidden="true">{e.ok ? "✓ " : "✗ "}</span>
                  {t(e.ok ? "as.tool.done" : "as.tool.failed", { label })}
                </summary>
                <pre>{e.content}</pre>
              </details>
            );
          }
          case "card":
            return <Card key={e.key} entry={e} />;
          case "error":
            return (
              <div key={e.key} className="as-error" role="alert">
                {e.text}
              </div>
            );
          case "stopped":
            return (
              <div key={e.key} className="as-stopped" role="status">
                {t("as.stopped")}
              </div>
            );
        }
      })}
    </>
  );
}

export function Conversation({ chat, compact = false }: { chat: Chat; compact?: boolean }) {
  const [text, setText] = useState("");
  const logRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    inputRef.current?.focus();
  }, [chat.session === null]);

  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [chat.entries]);

  const submit = () => {
    const message = text.trim();
    if (!message) return;
    if (chat.send(message)) setText("");
  };
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    }
  };

  return (
    <div className={`as-chat${compact ? " compact" : ""}`}>
      <div
        ref={logRef}
        className="as-log"
        role="log"
        aria-live="polite"
        aria-label={t("as.log")}
        tabIndex={0}
        data-testid="as-log"
      >
        {chat.entries.length === 0 && !chat.loading && <p className="as-empty">{t("as.empty")}</p>}
        {chat.loading && <p className="as-empty">{t("as.loading")}</p>}
        <Entries entries={chat.entries} />
        {chat.running && (
          <p className="as-thinking" role="status">
            {t("as.running")}
          </p>
        )}
      </div>
      <form
        className="as-composer"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <label htmlFor={compact ? "as-input-panel" : "as-input"} className="visually-hidden">
          {t("as.input.label")}
        </label>
        <textarea
          id={compact ? "as-input-panel" : "as-input"}
          ref={inputRef}
          value={text}
          rows={2}
          placeholder={t("as.input.placeholder")}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKey}
          autoFocus
        />
        <div className="as-actions">
          {chat.running && (
            <button type="button" className="as-stop" onClick={chat.stop}>
              {t("as.stop")}
            </button>
          )}
          <button type="submit" className="as-primary as-send">
            {t("as.send")}
          </button>
        </div>
      </form>
      {chat.connection === "closed" && (
        <p className="as-conn" role="status">
          {t("as.disconnected")}
        </p>
      )}
    </div>
  );
}
