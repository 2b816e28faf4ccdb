// Every string of the UI, in English and Russian. Each area of the app keeps its own
// dictionary file (core, workspace, assistant, files, ops); this module merges them.
import { useSyncExternalStore } from "react";
import { core } from "./core";
import { workspace } from "./workspace";
import { assistant } from "./assistant";
import { files } from "./files";
import { ops } from "./ops";
import { flows } from "./flows";

export type Locale = "en" | "ru";
export type Plural = { one: string; few?: string; many?: string; other: string };
export type Entry = string | Plural;
export type Dictionary = Record<string, { en: Entry; ru: Entry }>;

const all: Dictionary = { ...core, ...workspace, ...assistant, ...files, ...ops, ...flows };
const STORAGE_KEY = "nexflow.locale";
const listeners = new Set<() => void>();

function initial(): Locale {
  const saved = typeof localStorage !== "undefined" ? localStorage.getItem(STORAGE_KEY) : null;
  if (saved === "en" || saved === "ru") return saved;
  const langs = typeof navigator !== "undefined" ? navigator.languages ?? [navigator.language] : [];
  return langs.some((l) => l.toLowerCase().startsWith("ru")) ? "ru" : "en";
}

let current: Locale = initial();

export function locale(): Locale {
  return current;
}

export function setLocale(next: Locale): void {
  current = next;
  localStorage.setItem(STORAGE_KEY, next);
  document.documentElement.lang = next;
  listeners.forEach((l) => l());
}

/** The string for ``key``, with ``{name}`` placeholders filled; ``count`` picks the plural form. */
export function t(key: string, vars: Record<string, string | number> = {}): string {
  const item = all[key];
  let entry: Entry = item ? item[current] : key;
  if (typeof entry !== "string") {
    const n = Number(vars.count ?? 0);
    const form = new Intl.PluralRules(current).select(n) as keyof Plural;
    entry = entry[form] ?? entry.other;
  }
  return entry.replace(/\{(\w+)\}/g, (m, name: string) =>
    name in vars ? String(vars[name]) : m,
  );
}

/** Re-renders the component when the locale changes; returns the current one. */
export function useLocale(): Locale {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => current,
  );
}
