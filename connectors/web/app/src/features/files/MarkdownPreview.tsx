// A note rendered as HTML: marked, then DOMPurify (a note may hold any HTML; only safe
// markup reaches the page). Loaded on demand with the notes editor.
import { useMemo } from "react";
import { marked } from "marked";
import DOMPurify from "dompurify";

// A note's image without alt text is shown as decorative rather than read out as its URL.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "IMG" && !node.hasAttribute("alt")) node.setAttribute("alt", "");
});

export default function MarkdownPreview({ text, label }: { text: string; label: string }) {
  const html = useMemo(() => {
    const raw = marked.parse(text, { async: false, gfm: true });
    return DOMPurify.sanitize(raw, { USE_PROFILES: { html: true } });
  }, [text]);
  return (
    <div
      className="fi-preview"
      role="region"
      aria-label={label}
      tabIndex={0}
      dangerouslySetInnerHTML={{ __html: html }}
    />
  );
}
