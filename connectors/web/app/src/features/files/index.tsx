// The files area: the file browser view and the editors other areas may embed.
export { FilesView } from "./FilesView";
export type { FilesViewProps } from "./FilesView";
export { CodeEditor, NotesEditor } from "./editors";
export type { EditorProps } from "./editors";
export { FileEditor } from "./FileEditor";
export type { FileEditorProps } from "./FileEditor";
