// An assistant message as Markdown (marked, sanitised by DOMPurify, both loaded on first
// use); plain text until they are loaded and while the message still streams.
import { useEffect, useState } from "react";

type Render = (source: string) => string;
let loading: Promise<Render> | null = null;
let loaded: Render | null = null;

function load(): Promise<Render> {
  loading ??= Promise.all([import("marked"), import("dompurify")]).then(([m, d]) => {
    const render: Render = (source) =>
      d.default.sanitize(m.marked.parse(source, { async: false, gfm: true, breaks: true }) as string, {
        FORBID_TAGS: ["style", "form", "input", "img"],
      });
    loaded = render;
    return render;
  });
  return loading;
}

export function RichText({ text, streaming }: { text: string; streaming?: boolean }) {
  const [render, setRender] = useState<Render | null>(() => loaded);
  useEffect(() => {
    if (render || streaming) return;
    let alive = true;
    load().then((r) => alive && setRender(() => r), () => undefined);
    return () => {
      alive = false;
    };
  }, [render, streaming]);
  if (streaming || render === null) return <span className="as-plain">{text}</span>;
  return <div className="as-md" dangerouslySetInnerHTML={{ __html: render(text) }} />;
}
