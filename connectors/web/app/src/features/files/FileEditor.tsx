// One file of a workspace open in the right editor (a note or code), with Save: a commit
// made on the version the file was read at (base_sha). A 409 "stale" means someone or
// something committed the file meanwhile: the user reloads (or overwrites on purpose).
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../../api/client";
import { subscribe } from "../../api/events";
import { t, useLocale } from "../../i18n";
import { type Commit, type FileDoc, deleteFile, fetchFile, isNote, isReadOnly, saveFile } from "./api";
import { CodeEditor, NotesEditor } from "./editors";

type Status = "loading" | "ready" | "saving" | "stale" | "error" | "missing";

export type FileEditorProps = {
  workspace: string;
  path: string;
  /** Bumped by the parent to read the file again (after a restore). */
  reloadKey?: number;
  onCommitted?: (commit: Commit) => void;
  onDirtyChange?: (dirty: boolean) => void;
};

type Saver = (content: string | null, baseSha: string | null) => Promise<Commit>;

export function FileEditor({ workspace, path, reloadKey = 0, onCommitted, onDirtyChange }: FileEditorProps) {
  useLocale();
  const [doc, setDoc] = useState<FileDoc | null>(null);
  const [text, setText] = useState("");
  const [saved, setSaved] = useState("");
  const [status, setStatus] = useState<Status>("loading");
  const [error, setError] = useState("");
  const [commit, setCommit] = useState<Commit | null>(null);
  const [mount, setMount] = useState(0);
  const latest = useRef({ text, doc, status });
  latest.current = { text, doc, status };

  const load = useCallback(async () => {
    setStatus("loading");
    setError("");
    try {
      const found = await fetchFile(workspace, path);
      setDoc(found);
      setText(found.content);
      setSaved(found.content);
      setStatus("ready");
      setMount((m) => m + 1);
    } catch (err) {
      setDoc(null);
      if (err instanceof ApiError && err.status === 404) setStatus("missing");
      else {
        setStatus("error");
        setError(err instanceof Error ? err.message : String(err));
      }
    }
  }, [workspace, path]);

  useEffect(() => {
    setCommit(null);
    void load();
  }, [load, reloadKey]);

  const dirty = doc !== null && text !== saved;
  const saving = useRef(false);
  const clean = useRef(true);
  clean.current = !dirty;

  useEffect(
    () =>
      subscribe((frame) => {
        // Committed elsewhere (another tab, a restore, an accepted patch): an editor without
        // unsaved edits shows the new version; one with edits keeps them (Save says stale).
        const committed =
          frame.type === "file.committed" &&
          frame.workspace === workspace &&
          frame.path === path &&
          frame.sha !== latest.current.doc?.sha;
        const patched =
          frame.type === "patch" && frame.event === "merged" && frame.patch.target === `file:${path}`;
        if ((committed || patched) && !saving.current && clean.current) {
          void load();
        }
      }),
    [workspace, path, load],
  );
  useEffect(() => onDirtyChange?.(dirty), [dirty, onDirtyChange]);
  useEffect(() => {
    if (!dirty) return;
    const warn = (e: BeforeUnloadEvent) => e.preventDefault(); // the browser asks before leaving
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const commitWith = useCallback(
    async (write: Saver, remove: boolean, overwrite: boolean) => {
      const { text: content, doc: current, status: now } = latest.current;
      if (!current || now === "saving" || isReadOnly(path)) return;
      setStatus("saving");
      setError("");
      saving.current = true;
      try {
        const made = await write(remove ? null : content, overwrite ? null : current.sha);
        setCommit(made);
        if (remove) {
          setDoc(null);
          setStatus("missing");
        } else {
          latest.current.doc = { ...current, sha: made.sha };
          setDoc(latest.current.doc);
          setSaved(content);
          setStatus("ready");
        }
        onCommitted?.(made);
      } catch (err) {
        if (err instanceof ApiError && err.status === 409 && err.code === "stale") {
          setStatus("stale");
        } else {
          setStatus("error");
          setError(err instanceof Error ? err.message : String(err));
        }
      } finally {
        saving.current = false;
      }
    },
    [path, onCommitted],
  );
  const save = (overwrite = false) =>
    commitWith((content, sha) => saveFile(workspace, path, content ?? "", sha), false, overwrite);
  const remove = () => {
    if (!window.confirm(t("fi.confirmDelete", { path }))) return;
    void commitWith((_, sha) => deleteFile(workspace, path, sha), true, false);
  };

  if (status === "loading" && !doc) {
    return (
      <p className="fi-loading" role="status">
        {t("fi.loading")}
      </p>
    );
  }
  if (status === "missing") {
    return (
      <div>
        <p className="fi-commit" role="status">
          {commit ? t("fi.deleted", { sha: commit.sha.slice(0, 7) }) : ""}
        </p>
        <p className="fi-empty">{t("fi.missing", { path })}</p>
      </div>
    );
  }
  if (!doc) {
    return (
      <p className="fi-error" role="alert">
        {error}
      </p>
    );
  }
  const readOnly = isReadOnly(path);
  const Editor = isNote(path) ? NotesEditor : CodeEditor;
  return (
    <section className="fi-doc" aria-label={path}>
      <header className="fi-doc-bar">
        <h2 className="fi-doc-title">
          {path}
          {dirty && (
            <span className="fi-dirty" title={t("fi.unsaved")}>
              {" "}
              ● <span className="fi-sr">{t("fi.unsaved")}</span>
            </span>
          )}
        </h2>
        {!readOnly && (
          <span className="fi-actions">
            <button type="button" className="fi-danger" onClick={remove} disabled={status === "saving"}>
              {t("fi.delete")}
            </button>
            <button
              type="button"
              className="fi-primary"
              onClick={() => void save()}
              disabled={status === "saving" || status === "stale"}
              aria-keyshortcuts="Control+S Meta+S"
            >
              {status === "saving" ? t("fi.saving") : t("fi.save")}
            </button>
          </span>
        )}
      </header>
      {readOnly && <p className="fi-note">{t("fi.panelReadOnly")}</p>}
      {status === "stale" && (
        <div className="fi-alert" role="alert">
          <p>{t("fi.stale")}</p>
          <button type="button" onClick={() => void load()}>
            {t("fi.reload")}
          </button>{" "}
          <button type="button" className="fi-danger" onClick={() => void save(true)}>
            {t("fi.overwrite")}
          </button>
        </div>
      )}
      {status === "error" && (
        <p className="fi-error" role="alert">
          {t("fi.saveFailed", { message: error })}
        </p>
      )}
      <p className="fi-commit" role="status" aria-live="polite">
        {commit ? t("fi.committed", { sha: commit.sha.slice(0, 7), message: commit.message }) : ""}
      </p>
      <Editor
        key={`${path}:${mount}`}
        value={text}
        language={doc.language}
        path={path}
        readOnly={readOnly}
        onChange={setText}
        onSave={() => void save()}
      />
    </section>
  );
}
