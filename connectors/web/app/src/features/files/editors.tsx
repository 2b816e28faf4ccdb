// The editors other areas may embed: CodeEditor (CodeMirror, syntax per language) and
// NotesEditor (Markdown source beside its live preview). Both are controlled by their
// parent (value / onChange / onSave) and load their heavy parts on demand.
import { Suspense, lazy, useDeferredValue, type KeyboardEvent } from "react";
import { t, useLocale } from "../../i18n";

const CodeMirrorEditor = lazy(() => import("./CodeMirrorEditor"));
const MarkdownPreview = lazy(() => import("./MarkdownPreview"));

export type EditorProps = {
  value: string;
  /** python, javascript, typescript, json, yaml, markdown, html, css or text */
  language?: string;
  /** The file's name, for the editor's accessible label. */
  path?: string;
  readOnly?: boolean;
  onChange?: (text: string) => void;
  /** Ctrl/Cmd+S inside the editor. */
  onSave?: () => void;
};

/** Ctrl/Cmd+S anywhere inside ``onSave``'s editor saves (and never opens the browser's dialog). */
export function saveKeys(onSave?: () => void) {
  return (e: KeyboardEvent) => {
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === "s") {
      e.preventDefault();
      onSave?.();
    }
  };
}

function Loading() {
  return (
    <p className="fi-loading" role="status">
      {t("fi.loadingEditor")}
    </p>
  );
}

export function CodeEditor(props: EditorProps) {
  useLocale();
  const label = t("fi.codeLabel", { path: props.path ?? "" });
  return (
    <div className="fi-editor fi-code" onKeyDown={saveKeys(props.onSave)}>
      <Suspense fallback={<Loading />}>
        <CodeMirrorEditor
          value={props.value}
          language={props.language ?? "text"}
          label={label}
          readOnly={props.readOnly}
          onChange={props.onChange}
        />
      </Suspense>
    </div>
  );
}

export function NotesEditor(props: EditorProps) {
  useLocale();
  const preview = useDeferredValue(props.value);
  return (
    <div className="fi-editor fi-notes" onKeyDown={saveKeys(props.onSave)}>
      <Suspense fallback={<Loading />}>
        <div className="fi-notes-source">
          <CodeMirrorEditor
            value={props.value}
            language="markdown"
            label={t("fi.noteLabel", { path: props.path ?? "" })}
            readOnly={props.readOnly}
            wrap
            onChange={props.onChange}
          />
        </div>
        <MarkdownPreview text={preview} label={t("fi.preview")} />
      </Suspense>
    </div>
  );
}
