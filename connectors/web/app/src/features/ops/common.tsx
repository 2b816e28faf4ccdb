// Pieces every ops view shares: a section card, an error line, a translated name.
import type { ReactNode } from "react";
import { t } from "../../i18n";

export function Card({
  title,
  id,
  children,
  wide,
  actions,
}: {
  title: string;
  id: string;
  children: ReactNode;
  wide?: boolean;
  actions?: ReactNode;
}) {
  return (
    <section className={`ops-card${wide ? " ops-wide" : ""}`} aria-labelledby={`${id}-h`} id={id}>
      <header>
        <h3 id={`${id}-h`}>{title}</h3>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function ErrorNote({ error }: { error: Error | null }) {
  if (!error) return null;
  return (
    <p className="ops-error" role="alert">
      {error.message}
    </p>
  );
}

export function Loading({ loading }: { loading: boolean }) {
  return loading ? <p className="ops-muted">{t("ops.loading")}</p> : null;
}

/** The translation of ``prefix.value``, or the value itself when there is none (a status
 * or permission name the dictionary does not know yet). */
export function named(prefix: string, value: string): string {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}
