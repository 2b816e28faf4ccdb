// Markdown: rendered with marked and sanitised with DOMPurify, both loaded on first use
// (they stay out of the first-load bundle). Until then the source shows as text.
import { useEffect, useState } from "react";
import { str, type NodeProps } from "../types";

type Render = (source: string) => string;
let renderer: Promise<Render> | null = null;

function load(): Promise<Render> {
  renderer ??= Promise.all([import("marked"), import("dompurify")]).then(([m, d]) => {
    const purify = d.default;
    return (source: string) => purify.sanitize(m.marked.parse(source, { async: false }) as string);
  });
  return renderer;
}

export function Markdown({ node }: NodeProps) {
  const source = str(node.props.content);
  const [html, setHtml] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    load().then((render) => live && setHtml(render(source)));
    return () => {
      live = false;
    };
  }, [source]);
  if (html === null) return <div className="c-markdown pending">{source}</div>;
  return <div className="c-markdown" dangerouslySetInnerHTML={{ __html: html }} />;
}
