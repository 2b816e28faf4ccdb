// Components that run the panel's tools: Action, Input, Toggle, List.
import { useId, useState, type FormEvent } from "react";
import { t } from "../../../i18n";
import { fire, str, type Json, type NodeProps } from "../types";

function useBusy(): [boolean, (p: Promise<boolean>) => Promise<boolean>] {
  const [busy, setBusy] = useState(false);
  return [
    busy,
    async (p) => {
      setBusy(true);
      try {
        return await p;
      } finally {
        setBusy(false);
      }
    },
  ];
}

export function Action({ node, onTrigger }: NodeProps) {
  const [busy, run] = useBusy();
  const variant = str(node.props.variant) || "default";
  const confirmText = str(node.props.confirm);
  const disabled = node.props.disabled === true || !node.trigger;
  return (
    <button
      type="button"
      className={`c-action ${variant}`}
      disabled={disabled || busy}
      aria-busy={busy}
      onClick={() => {
        if (confirmText && !window.confirm(confirmText)) return;
        void run(fire(node, onTrigger));
      }}
    >
      {str(node.props.label)}
    </button>
  );
}

export function Input({ node, onTrigger }: NodeProps) {
  const id = useId();
  const [busy, run] = useBusy();
  const [draft, setDraft] = useState<string | null>(null);
  const value = draft ?? str(node.props.value);
  const label = str(node.props.label) || str(node.props.placeholder) || t("ws.input");
  const arg = str(node.props.arg) || "value";
  const multiline = node.props.multiline === true;
  async function submit(e?: FormEvent) {
    e?.preventDefault();
    if (!node.trigger) return;
    if (await run(fire(node, onTrigger, { [arg]: value }))) setDraft(null);
  }
  const field = multiline ? (
    <textarea
      id={id}
      value={value}
      rows={4}
      placeholder={str(node.props.placeholder)}
      readOnly={!node.trigger}
      onChange={(e) => setDraft(e.target.value)}
      onKeyDown={(e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void submit();
      }}
    />
  ) : (
    <input
      id={id}
      value={value}
      placeholder={str(node.props.placeholder)}
      readOnly={!node.trigger}
      onChange={(e) => setDraft(e.target.value)}
    />
  );
  return (
    <form className="c-input" onSubmit={submit} aria-busy={busy}>
      <label htmlFor={id} className={str(node.props.label) ? undefined : "visually-hidden"}>
        {label}
      </label>
      {field}
      {node.trigger && multiline && (
        <button type="submit" disabled={busy} className="primary">
          {t("ws.submit")}
        </button>
      )}
    </form>
  );
}

export function Toggle({ node, onTrigger }: NodeProps) {
  const [busy, run] = useBusy();
  const on = node.props.value === true;
  const arg = str(node.props.arg) || "value";
  return (
    <button
      type="button"
      role="switch"
      aria-checked={on}
      className={`c-toggle ${on ? "on" : "off"}`}
      disabled={!node.trigger || busy}
      onClick={() => void run(fire(node, onTrigger, { [arg]: !on }))}
    >
      <span className="c-toggle-track" aria-hidden="true">
        <span className="c-toggle-thumb" />
      </span>
      {str(node.props.label)}
      <span className="muted"> {on ? t("ws.on") : t("ws.off")}</span>
    </button>
  );
}

function itemLabel(item: Json, labelKey: Json | undefined): string {
  if (typeof item === "object" && item !== null && !Array.isArray(item)) {
    return str(item[typeof labelKey === "string" ? labelKey : "text"] ?? "");
  }
  return str(item);
}

export function List({ node, onTrigger }: NodeProps) {
  const [busy, run] = useBusy();
  const items = Array.isArray(node.props.items) ? node.props.items : [];
  const check = typeof node.props.check_key === "string" ? node.props.check_key : null;
  const arg = str(node.props.arg) || "index";
  const Tag = node.props.ordered === true ? "ol" : "ul";
  if (items.length === 0) return <p className="muted c-list-empty">{t("ws.list.empty")}</p>;
  return (
    <Tag className="c-list">
      {items.map((item, i) => {
        const label = itemLabel(item, node.props.label_key);
        const obj = typeof item === "object" && item !== null && !Array.isArray(item) ? item : null;
        if (check) {
          const done = obj ? obj[check] === true : false;
          return (
            <li key={i} className={done ? "done" : undefined}>
              <label>
                <input
                  type="checkbox"
                  checked={done}
                  disabled={!node.trigger || busy}
                  onChange={() => void run(fire(node, onTrigger, { [arg]: i }))}
                />
                <span>{label}</span>
              </label>
            </li>
          );
        }
        return (
          <li key={i}>
            {node.trigger ? (
              <button type="button" className="link" disabled={busy} onClick={() => void run(fire(node, onTrigger, { [arg]: i }))}>
                {label}
              </button>
            ) : (
              label
            )}
          </li>
        );
      })}
    </Tag>
  );
}
