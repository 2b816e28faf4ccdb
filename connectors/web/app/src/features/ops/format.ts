// Numbers, money and dates in the current locale (Intl), for every ops view.
import { locale } from "../../i18n";

export function num(n: number): string {
  return new Intl.NumberFormat(locale()).format(n);
}

export function usd(n: number): string {
  return new Intl.NumberFormat(locale(), {
    style: "currency",
    currency: "USD",
    maximumFractionDigits: n > 0 && n < 1 ? 4 : 2,
  }).format(n);
}

/** Epoch seconds → date and time. */
export function when(epochS: number | null | undefined): string {
  if (!epochS) return "—";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(epochS * 1000),
  );
}

/** A UTC day (YYYY-MM-DD) → "6 Dec" / "6 дек.". */
export function day(iso: string): string {
  return new Intl.DateTimeFormat(locale(), { day: "numeric", month: "short", timeZone: "UTC" }).format(
    new Date(`${iso}T00:00:00Z`),
  );
}

/** An ISO timestamp → the time of day with seconds. */
export function clock(iso: string | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale(), {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(d);
}
