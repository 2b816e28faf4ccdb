// The side form of the selected node: its settings (from GET /api/v1/flows/node-types, so a
// field added to a node model appears here), its connections (add and remove from the
// keyboard) and, during or after a run, its stage: status, attempts, duration, tokens, output
// and error.
import { useEffect, useState } from "react";
import { stringify as yamlInline, parse as yamlParse } from "yaml";
import { t } from "../../i18n";
import type { FieldSpec, NodeTypeSpec, Stage } from "./api";
import type { GraphEdge, GraphNode, PortName } from "./doc";

interface Props {
  node: GraphNode;
  spec: NodeTypeSpec | undefined;
  ids: string[];
  edges: GraphEdge[];
  stage: Stage | undefined;
  problems: string[];
  readOnly: boolean;
  onField: (key: string, value: unknown) => void;
  onConnect: (port: PortName, target: string) => void;
  onDisconnect: (edge: GraphEdge) => void;
  onDelete: () => void;
}

function inline(value: unknown): string {
  if (value === undefined || value === null) return "";
  return yamlInline(value, { collectionStyle: "flow", lineWidth: 0, flowCollectionPadding: false }).trim();
}

function FieldInput({ field, value, ids, disabled, onChange }: {
  field: FieldSpec;
  value: unknown;
  ids: string[];
  disabled: boolean;
  onChange: (value: unknown) => void;
}) {
  const id = `fl-field-${field.name}`;
  const label = (
    <label htmlFor={id}>
      {field.name}
      {field.required ? <span aria-hidden="true"> *</span> : null}
      {field.required ? <span className="visually-hidden"> ({t("fl.required")})</span> : null}
    </label>
  );
  const [draft, setDraft] = useState(inline(value));
  const [bad, setBad] = useState(false);
  useEffect(() => {
    // Keep what is being typed when it already means this value ("1.50" for 1.5).
    setDraft((d) => (typeof value === "number" && Number(d.trim()) === value ? d : inline(value)));
    setBad(false);
  }, [value]);

  if (field.name === "on_error") {
    return (
      <div className="fl-field">
        {label}
        <select id={id} disabled={disabled} value={typeof value === "string" ? value : ""} onChange={(e) => onChange(e.target.value || undefined)}>
          <option value="">{t("fl.onError.fail")}</option>
          <option value="continue">{t("fl.onError.continue")}</option>
          {ids.map((n) => (
            <option key={n} value={n}>
              {t("fl.onError.node", { node: n })}
            </option>
          ))}
        </select>
      </div>
    );
  }
  switch (field.kind) {
    case "boolean":
      return (
        <div className="fl-field fl-field--check">
          <input id={id} type="checkbox" disabled={disabled} checked={value === true} onChange={(e) => onChange(e.target.checked)} />
          {label}
        </div>
      );
    case "enum":
      return (
        <div className="fl-field">
          {label}
          <select id={id} disabled={disabled} value={typeof value === "string" ? value : String(field.default ?? "")} onChange={(e) => onChange(e.target.value)}>
            {(field.options ?? []).map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
        </div>
      );
    case "number":
    case "integer":
      // A draft of its own: "1." or "-" while typing must not be written (or wiped) yet.
      return (
        <div className="fl-field">
          {label}
          <input
            id={id}
            inputMode={field.kind === "integer" ? "numeric" : "decimal"}
            disabled={disabled}
            value={draft}
            placeholder={field.default != null ? String(field.default) : ""}
            aria-invalid={bad}
            aria-describedby={bad ? `${id}-bad` : undefined}
            onChange={(e) => {
              const raw = e.target.value.trim();
              setDraft(e.target.value);
              const n = Number(raw);
              const ok = raw !== "" && Number.isFinite(n) && (field.kind === "number" || Number.isInteger(n));
              setBad(raw !== "" && !ok && !/^[-+]?\d*\.?$/.test(raw));
              if (raw === "") onChange(undefined);
              else if (ok && !raw.endsWith(".")) onChange(n);
            }}
          />
          {bad && (
            <span id={`${id}-bad`} className="fl-error-text">
              {t("fl.badNumber")}
            </span>
          )}
        </div>
      );
    case "text":
      return (
        <div className="fl-field">
          {label}
          <textarea
            id={id}
            rows={2}
            disabled={disabled}
            value={typeof value === "string" ? value : ""}
            onChange={(e) => onChange(e.target.value === "" && !field.required ? undefined : e.target.value)}
          />
        </div>
      );
    case "list":
    case "object": {
      const commit = () => {
        if (draft.trim() === "") {
          setBad(false);
          onChange(undefined);
          return;
        }
        try {
          const parsed: unknown = yamlParse(draft);
          const ok = field.kind === "list" ? Array.isArray(parsed) : typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
          setBad(!ok);
          if (ok) onChange(parsed);
        } catch {
          setBad(true);
        }
      };
      return (
        <div className="fl-field">
          {label}
          <input
            id={id}
            className="fl-mono"
            disabled={disabled}
            value={draft}
            placeholder={field.kind === "list" ? "[a, b]" : "{key: value}"}
            aria-invalid={bad}
            aria-describedby={bad ? `${id}-bad` : undefined}
            onChange={(e) => setDraft(e.target.value)}
            onBlur={commit}
            onKeyDown={(e) => e.key === "Enter" && commit()}
          />
          {bad && (
            <span id={`${id}-bad`} className="fl-error-text">
              {t(field.kind === "list" ? "fl.badList" : "fl.badObject")}
            </span>
          )}
        </div>
      );
    }
    default:
      return (
        <div className="fl-field">
          {label}
          <input
            id={id}
            disabled={disabled}
            value={typeof value === "string" ? value : value == null ? "" : String(value)}
            onChange={(e) => onChange(e.target.value === "" && !field.required ? undefined : e.target.value)}
          />
        </div>
      );
  }
}

export function NodeForm({ node, spec, ids, edges, stage, problems, readOnly, onField, onConnect, onDisconnect, onDelete }: Props) {
  const others = ids.filter((i) => i !== node.id);
  const ports = (spec?.outputs.map((p) => p.name) ?? ["out", "error"]) as PortName[];
  const [port, setPort] = useState<PortName>("out");
  const [target, setTarget] = useState("");
  const mine = edges.filter((e) => e.source === node.id || e.target === node.id);
  useEffect(() => {
    setPort("out");
    setTarget("");
  }, [node.id]);
  return (
    <section className="fl-form" aria-labelledby="fl-form-title">
      <h3 id="fl-form-title">
        {t("fl.nodeTitle", { node: node.id })} <span className="fl-muted">({node.type})</span>
      </h3>
      {spec?.description && <p className="fl-muted">{spec.description}</p>}
      {problems.length > 0 && (
        <ul className="fl-node-problems" aria-label={t("fl.nodeProblems")}>
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
      {stage && (
        <section className="fl-stage" aria-label={t("fl.stage")} data-testid="fl-stage">
          <h4>{t("fl.stage")}</h4>
          <dl>
            <dt>{t("fl.stage.status")}</dt>
            <dd data-status={stage.status}>{t(`fl.status.${stage.status}`)}</dd>
            <dt>{t("fl.stage.attempts")}</dt>
            <dd>{stage.attempts}</dd>
            <dt>{t("fl.stage.duration")}</dt>
            <dd>{stage.duration_s == null ? "—" : t("fl.seconds", { value: stage.duration_s.toFixed(2) })}</dd>
            <dt>{t("fl.stage.tokens")}</dt>
            <dd>{t("fl.tokensInOut", { in: stage.tokens_in, out: stage.tokens_out })}</dd>
            <dt>{t("fl.stage.tools")}</dt>
            <dd>{stage.tool_calls}</dd>
          </dl>
          <h5>{t("fl.stage.log")}</h5>
          <pre className="fl-log">
            {[stage.output_preview && `${t("fl.stage.output")}: ${stage.output_preview}`, stage.error && `${t("fl.stage.error")}: ${stage.error}`]
              .filter(Boolean)
              .join("\n") || t("fl.stage.noLog")}
          </pre>
        </section>
      )}
      <fieldset disabled={readOnly}>
        <legend>{t("fl.settings")}</legend>
        {(spec?.fields ?? [])
          .filter((f) => !f.edge || f.name === "on_error")
          .map((f) => (
            <FieldInput key={`${node.id}:${f.name}`} field={f} value={node.data[f.name]} ids={others} disabled={readOnly} onChange={(v) => onField(f.name, v)} />
          ))}
      </fieldset>
      <fieldset disabled={readOnly}>
        <legend>{t("fl.connections")}</legend>
        {mine.length === 0 ? (
          <p className="fl-muted">{t("fl.noConnections")}</p>
        ) : (
          <ul className="fl-edges">
            {mine.map((e) => {
              const text = t(`fl.edge.${e.port}`, { source: e.source, target: e.target });
              return (
                <li key={e.id}>
                  <span>{text}</span>
                  <button type="button" className="fl-small" aria-label={t("fl.removeEdge", { edge: text })} onClick={() => onDisconnect(e)}>
                    {t("fl.remove")}
                  </button>
                </li>
              );
            })}
          </ul>
        )}
        <div className="fl-connect">
          <label htmlFor="fl-connect-port">{t("fl.connectPort")}</label>
          <select id="fl-connect-port" value={port} onChange={(e) => setPort(e.target.value as PortName)}>
            {ports.map((p) => (
              <option key={p} value={p}>
                {t(`fl.portName.${p}`)}
              </option>
            ))}
          </select>
          <label htmlFor="fl-connect-target">{t("fl.connectTo")}</label>
          <select id="fl-connect-target" value={target} onChange={(e) => setTarget(e.target.value)}>
            <option value="">{t("fl.chooseNode")}</option>
            {others.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
          <button type="button" disabled={!target} onClick={() => target && onConnect(port, target)}>
            {t("fl.connect")}
          </button>
        </div>
      </fieldset>
      <button type="button" className="fl-danger" disabled={readOnly} onClick={onDelete}>
        {t("fl.deleteNode", { node: node.id })}
      </button>
    </section>
  );
}
