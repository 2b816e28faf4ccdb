// The file browser: the workspace's git tree, the open file in its editor (notes or
// code), and the file's history with restore. The route is #/files/<workspace>/<path>.
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { subscribe } from "../../api/events";
import { t, useLocale } from "../../i18n";
import { type Commit, type TreeEntry, fetchTree, saveFile } from "./api";
import { FileEditor } from "./FileEditor";
import { FileHistory } from "./FileHistory";
import { FileTree } from "./FileTree";
import { type FilesRoute, filesHash, parseFilesHash } from "./route";
import "./files.css";

export type FilesViewProps = { workspace?: string; path?: string | null };

function useFilesRoute(props: FilesViewProps): [FilesRoute, (path: string | null) => void] {
  const fromHash = () => parseFilesHash(typeof location !== "undefined" ? location.hash : "");
  const [hashRoute, setHashRoute] = useState<FilesRoute>(fromHash);
  const [local, setLocal] = useState<string | null | undefined>(undefined);
  useEffect(() => {
    const on = () => {
      setHashRoute(fromHash());
      setLocal(undefined);
    };
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  const workspace = props.workspace ?? hashRoute.workspace;
  const fromProps = props.path !== undefined ? props.path : hashRoute.path;
  const path = local !== undefined ? local : fromProps;
  const go = (next: string | null) => {
    // Under #/files the hash is the route (the App passes it back as props); embedded
    // elsewhere the view keeps the open file itself.
    if (location.hash.startsWith("#/files")) location.hash = filesHash(workspace, next);
    else setLocal(next);
  };
  return [{ workspace, path }, go];
}

export function FilesView(props: FilesViewProps = {}) {
  useLocale();
  const [{ workspace, path }, go] = useFilesRoute(props);
  const [entries, setEntries] = useState<TreeEntry[] | null>(null);
  const [error, setError] = useState("");
  const [historyKey, setHistoryKey] = useState(0);
  const [reloadKey, setReloadKey] = useState(0);
  const [creating, setCreating] = useState<"note" | "file" | null>(null);
  const dirty = useRef(false);

  const loadTree = useCallback(async () => {
    try {
      setEntries(await fetchTree(workspace));
      setError("");
    } catch (err) {
      setEntries([]);
      setError(err instanceof Error ? err.message : String(err));
    }
  }, [workspace]);

  useEffect(() => {
    setEntries(null);
    void loadTree();
  }, [loadTree]);

  useEffect(
    () =>
      subscribe((frame) => {
        // A commit from another tab, the assistant or a patch: show it in the tree and
        // the history (the editor keeps the user's text; a save then answers "stale").
        const patched =
          frame.type === "patch" &&
          frame.event === "merged" &&
          frame.patch.target.startsWith("file:") &&
          String(frame.patch.workspace ?? "").endsWith(`/${workspace}`);
        if ((frame.type === "file.committed" && frame.workspace === workspace) || patched) {
          void loadTree();
          setHistoryKey((k) => k + 1);
        } else if (frame.type === "connection" && frame.state === "open") {
          void loadTree();
        }
      }),
    [workspace, loadTree],
  );

  const confirmDiscard = () => !dirty.current || window.confirm(t("fi.discard"));

  const open = (next: string) => {
    if (next === path || !confirmDiscard()) return;
    dirty.current = false;
    go(next);
  };

  const committed = useCallback(
    (_: Commit) => {
      setHistoryKey((k) => k + 1);
      void loadTree();
    },
    [loadTree],
  );

  const restored = (_: Commit) => {
    dirty.current = false;
    setHistoryKey((k) => k + 1);
    setReloadKey((k) => k + 1);
    void loadTree();
  };

  const onDirty = useCallback((d: boolean) => {
    dirty.current = d;
  }, []);

  return (
    <div className="fi-view">
      <aside className="fi-side" aria-labelledby="fi-files-title">
        <div className="fi-side-head">
          <h2 id="fi-files-title">
            {t("fi.title")} <span className="fi-muted">{workspace}</span>
          </h2>
          <div className="fi-actions">
            <button type="button" onClick={() => setCreating("note")} aria-expanded={creating === "note"}>
              {t("fi.newNote")}
            </button>
            <button type="button" onClick={() => setCreating("file")} aria-expanded={creating === "file"}>
              {t("fi.newFile")}
            </button>
          </div>
        </div>
        {creating && (
          <NewFileForm
            kind={creating}
            exists={(p) => !!entries?.some((e) => e.path === p)}
            onCancel={() => setCreating(null)}
            onCreate={async (p, content) => {
              await saveFile(workspace, p, content, null, t("fi.createdMessage", { path: p }));
              setCreating(null);
              await loadTree();
              open(p);
            }}
          />
        )}
        {error && (
          <p className="fi-error" role="alert">
            {error}
          </p>
        )}
        {entries === null ? (
          <p role="status">{t("fi.loading")}</p>
        ) : (
          <FileTree key={workspace} entries={entries} selected={path} onOpen={open} />
        )}
      </aside>
      <div className="fi-main">
        {path ? (
          <FileEditor
            workspace={workspace}
            path={path}
            reloadKey={reloadKey}
            onCommitted={committed}
            onDirtyChange={onDirty}
          />
        ) : (
          <p className="fi-empty">{t("fi.pick")}</p>
        )}
      </div>
      {path && (
        <FileHistory
          workspace={workspace}
          path={path}
          refreshKey={historyKey}
          confirmDiscard={confirmDiscard}
          onRestored={restored}
        />
      )}
    </div>
  );
}

type NewFileFormProps = {
  kind: "note" | "file";
  exists: (path: string) => boolean;
  onCancel: () => void;
  onCreate: (path: string, content: string) => Promise<void>;
};

function NewFileForm({ kind, exists, onCancel, onCreate }: NewFileFormProps) {
  const [name, setName] = useState("");
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const raw = name.trim().replace(/^\/+/, "");
    if (!raw) return setProblem(t("fi.nameRequired"));
    const path = kind === "note" ? `notes/${raw.replace(/\.md$/i, "")}.md` : raw;
    if (exists(path)) return setProblem(t("fi.exists", { path }));
    const title = raw.replace(/\.md$/i, "").split("/").pop() ?? raw;
    setBusy(true);
    setProblem("");
    try {
      await onCreate(path, kind === "note" ? `# ${title}\n\n` : "");
    } catch (err) {
      setProblem(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const id = `fi-new-${kind}`;
  return (
    <form className="fi-new" onSubmit={(e) => void submit(e)}>
      <label htmlFor={id}>{kind === "note" ? t("fi.noteName") : t("fi.filePath")}</label>
      <input
        id={id}
        autoFocus
        value={name}
        placeholder={kind === "note" ? t("fi.notePlaceholder") : t("fi.filePlaceholder")}
        onChange={(e) => setName(e.target.value)}
        onKeyDown={(e) => e.key === "Escape" && onCancel()}
        aria-invalid={problem ? true : undefined}
        aria-describedby={problem ? `${id}-problem` : undefined}
      />
      <div className="fi-actions">
        <button type="submit" className="fi-primary" disabled={busy}>
          {t("fi.create")}
        </button>
        <button type="button" onClick={onCancel}>
          {t("fi.cancel")}
        </button>
      </div>
      {problem && (
        <p id={`${id}-problem`} className="fi-error" role="alert">
          {problem}
        </p>
      )}
    </form>
  );
}
