// The workspace's git tree as an ARIA tree: folders collapse, arrows move, Right/Left
// open and close a folder, Enter or Space opens a file, Home/End jump (one tab stop).
import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { t, useLocale } from "../../i18n";
import type { TreeEntry } from "./api";

type Row = { path: string; name: string; kind: "file" | "dir"; level: number; size: number };

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** The rows shown: folders first, then files, by name; children of closed folders hidden. */
function visibleRows(entries: TreeEntry[], open: Set<string>): Row[] {
  const children = new Map<string, TreeEntry[]>();
  for (const e of entries) {
    const p = parentOf(e.path);
    if (!children.has(p)) children.set(p, []);
    children.get(p)!.push(e);
  }
  const rows: Row[] = [];
  const walk = (dir: string, level: number) => {
    const items = [...(children.get(dir) ?? [])].sort((a, b) =>
      a.kind !== b.kind ? (a.kind === "dir" ? -1 : 1) : a.path.localeCompare(b.path),
    );
    for (const e of items) {
      rows.push({ path: e.path, name: e.path.slice(dir ? dir.length + 1 : 0), kind: e.kind, level, size: e.size });
      if (e.kind === "dir" && open.has(e.path)) walk(e.path, level + 1);
    }
  };
  walk("", 1);
  return rows;
}

function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let p = parentOf(path); p; p = parentOf(p)) out.push(p);
  return out;
}

export type FileTreeProps = {
  entries: TreeEntry[];
  selected: string | null;
  onOpen: (path: string) => void;
};

export function FileTree({ entries, selected, onOpen }: FileTreeProps) {
  useLocale();
  const [open, setOpen] = useState<Set<string>>(() => {
    const start = entries
      .filter((e) => e.kind === "dir" && !e.path.includes("/") && !e.path.startsWith(".") && e.path !== "panels")
      .map((e) => e.path);
    return new Set([...start, ...(selected ? ancestors(selected) : [])]);
  });
  const [focused, setFocused] = useState<string | null>(selected);
  const items = useRef(new Map<string, HTMLLIElement>());
  const moved = useRef(false);

  useEffect(() => {
    if (selected) setOpen((o) => new Set([...o, ...ancestors(selected)]));
  }, [selected]);

  const rows = useMemo(() => visibleRows(entries, open), [entries, open]);
  const current = rows.find((r) => r.path === focused) ? focused : (rows.find((r) => r.path === selected)?.path ?? rows[0]?.path ?? null);

  useEffect(() => {
    if (moved.current && current) items.current.get(current)?.focus();
    moved.current = false;
  }, [current]);

  const toggle = (path: string, value?: boolean) =>
    setOpen((o) => {
      const next = new Set(o);
      const want = value ?? !next.has(path);
      if (want) next.add(path);
      else next.delete(path);
      return next;
    });

  const focusRow = (path: string | undefined) => {
    if (!path) return;
    moved.current = true;
    setFocused(path);
    items.current.get(path)?.focus();
  };

  const onKey = (e: KeyboardEvent<HTMLUListElement>) => {
    const i = rows.findIndex((r) => r.path === current);
    const row = rows[i];
    if (!row) return;
    let handled = true;
    switch (e.key) {
      case "ArrowDown":
        focusRow(rows[i + 1]?.path);
        break;
      case "ArrowUp":
        focusRow(rows[i - 1]?.path);
        break;
      case "Home":
        focusRow(rows[0]?.path);
        break;
      case "End":
        focusRow(rows[rows.length - 1]?.path);
        break;
      case "ArrowRight":
        if (row.kind === "dir") {
          if (!open.has(row.path)) toggle(row.path, true);
          else focusRow(rows[i + 1]?.level === row.level + 1 ? rows[i + 1].path : undefined);
        }
        break;
      case "ArrowLeft":
        if (row.kind === "dir" && open.has(row.path)) toggle(row.path, false);
        else focusRow(parentOf(row.path) || undefined);
        break;
      case "Enter":
      case " ":
        if (row.kind === "dir") toggle(row.path);
        else onOpen(row.path);
        break;
      default:
        handled = false;
    }
    if (handled) e.preventDefault();
  };

  if (rows.length === 0) return <p className="fi-empty">{t("fi.emptyTree")}</p>;
  return (
    <ul className="fi-tree" role="tree" aria-label={t("fi.tree")} onKeyDown={onKey}>
      {rows.map((r) => (
        <li
          key={r.path}
          ref={(el) => {
            if (el) items.current.set(r.path, el);
            else items.current.delete(r.path);
          }}
          role="treeitem"
          aria-level={r.level}
          aria-expanded={r.kind === "dir" ? open.has(r.path) : undefined}
          aria-selected={r.path === selected}
          tabIndex={r.path === current ? 0 : -1}
          className={`fi-row fi-${r.kind}${r.path === selected ? " fi-selected" : ""}`}
          style={{ paddingInlineStart: `${(r.level - 1) * 1.1 + 0.4}rem` }}
          data-path={r.path}
          title={r.kind === "file" ? t("fi.size", { count: r.size }) : undefined}
          onFocus={() => setFocused(r.path)}
          onClick={() => {
            setFocused(r.path);
            if (r.kind === "dir") toggle(r.path);
            else onOpen(r.path);
          }}
        >
          <span aria-hidden="true" className="fi-glyph">
            {r.kind === "dir" ? (open.has(r.path) ? "▾" : "▸") : "·"}
          </span>
          {r.name}
        </li>
      ))}
    </ul>
  );
}
