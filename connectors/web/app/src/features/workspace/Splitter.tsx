// The border between two areas in tile mode: drag it, or focus it and use the arrow
// keys (Home/End for the extremes). A WAI-ARIA window splitter.
import { useRef } from "react";
import { t } from "../../i18n";

export function Splitter({
  value,
  onResize,
  container,
}: {
  value: number; // the left area's share of the pair, 0..1
  onResize: (delta: number) => void;
  container: () => HTMLElement | null;
}) {
  const start = useRef<{ x: number; width: number } | null>(null);
  return (
    <div
      className="splitter"
      role="separator"
      aria-orientation="vertical"
      aria-label={t("ws.resize")}
      aria-valuemin={10}
      aria-valuemax={90}
      aria-valuenow={Math.round(value * 100)}
      tabIndex={0}
      onKeyDown={(e) => {
        const step = e.shiftKey ? 0.1 : 0.05;
        if (e.key === "ArrowLeft") onResize(-step);
        else if (e.key === "ArrowRight") onResize(step);
        else if (e.key === "Home") onResize(-1);
        else if (e.key === "End") onResize(1);
        else return;
        e.preventDefault();
      }}
      onPointerDown={(e) => {
        const el = container();
        if (!el) return;
        e.currentTarget.setPointerCapture(e.pointerId);
        start.current = { x: e.clientX, width: el.getBoundingClientRect().width };
      }}
      onPointerMove={(e) => {
        const s = start.current;
        if (!s || s.width === 0) return;
        const delta = (e.clientX - s.x) / s.width;
        if (Math.abs(delta) >= 0.005) {
          onResize(delta);
          start.current = { x: e.clientX, width: s.width };
        }
      }}
      onPointerUp={() => {
        start.current = null;
      }}
    />
  );
}
