// CodeMirror 6, loaded on demand (React.lazy in editors.tsx): line numbers, undo history,
// syntax highlighting per language (each language pack is its own chunk, loaded when a
// file of that language opens). Tab is left to move focus (no keyboard trap).
import { useEffect, useRef } from "react";
import { Compartment, EditorState, type Extension } from "@codemirror/state";
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import {
  HighlightStyle,
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  syntaxHighlighting,
} from "@codemirror/language";

export type CodeMirrorProps = {
  value: string;
  language: string;
  label: string;
  readOnly?: boolean;
  wrap?: boolean;
  onChange?: (text: string) => void;
};

async function languageFor(language: string): Promise<Extension> {
  switch (language) {
    case "python":
      return (await import("@codemirror/lang-python")).python();
    case "javascript":
      return (await import("@codemirror/lang-javascript")).javascript({ jsx: true });
    case "typescript":
      return (await import("@codemirror/lang-javascript")).javascript({
        jsx: true,
        typescript: true,
      });
    case "json":
      return (await import("@codemirror/lang-json")).json();
    case "yaml":
      return (await import("@codemirror/lang-yaml")).yaml();
    case "markdown":
      return (await import("@codemirror/lang-markdown")).markdown();
    case "html":
      return (await import("@codemirror/lang-html")).html();
    case "css":
      return (await import("@codemirror/lang-css")).css();
    default:
      return [];
  }
}

// Colours with AA contrast on the editor's light background (the default gutter grey is not).
const theme = EditorView.theme({
  "&": { fontSize: "14px", height: "100%", backgroundColor: "#ffffff", color: "#1b1f24" },
  ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" },
  ".cm-gutters": { backgroundColor: "#f6f8fa", color: "#57606a", borderRight: "1px solid #d0d7de" },
  ".cm-activeLineGutter": { backgroundColor: "#e7edf3", color: "#1b1f24" },
  ".cm-activeLine": { backgroundColor: "#f3f6f9" },
  "&.cm-focused": { outline: "2px solid #0b5cad", outlineOffset: "-2px" },
  ".cm-content": { caretColor: "#1b1f24" },
});

// CodeMirror's default token colours, with the few below 4.5:1 on white darkened (WCAG AA).
const DARKER: Record<string, string> = {
  "#e40": "#b33000",
  "#f00": "#c00",
  "#085": "#006650",
  "#888": "#575f67",
};
const highlight = HighlightStyle.define(
  defaultHighlightStyle.specs.map((spec) =>
    typeof spec.color === "string" && DARKER[spec.color] ? { ...spec, color: DARKER[spec.color] } : spec,
  ),
);

export default function CodeMirrorEditor(props: CodeMirrorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const onChange = useRef(props.onChange);
  onChange.current = props.onChange;
  const lang = useRef(new Compartment());
  const access = useRef(new Compartment());

  useEffect(() => {
    const state = EditorState.create({
      doc: props.value,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        highlightActiveLine(),
        syntaxHighlighting(highlight),
        keymap.of([...defaultKeymap, ...historyKeymap]),
        props.wrap ? EditorView.lineWrapping : [],
        theme,
        lang.current.of([]),
        access.current.of(extensionsFor(props.label, !!props.readOnly)),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) onChange.current?.(update.state.doc.toString());
        }),
      ],
    });
    const v = new EditorView({ state, parent: host.current! });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // The document is set once: a new file or a reload mounts a new editor (its key).
  }, []);

  useEffect(() => {
    let live = true;
    languageFor(props.language).then((ext) => {
      if (live && view.current) view.current.dispatch({ effects: lang.current.reconfigure(ext) });
    });
    return () => {
      live = false;
    };
  }, [props.language]);

  useEffect(() => {
    view.current?.dispatch({
      effects: access.current.reconfigure(extensionsFor(props.label, !!props.readOnly)),
    });
  }, [props.label, props.readOnly]);

  return <div className="fi-cm" ref={host} data-language={props.language} />;
}

function extensionsFor(label: string, readOnly: boolean): Extension {
  return [
    EditorState.readOnly.of(readOnly),
    EditorView.editable.of(!readOnly),
    EditorView.contentAttributes.of({ "aria-label": label, "aria-readonly": String(readOnly) }),
  ];
}
