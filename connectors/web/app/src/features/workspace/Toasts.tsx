// Toasts of the panels ($emit('toast', ...)) and flows, announced politely.
import type { Toast } from "./useWorkspace";

export function Toasts({ toasts }: { toasts: Toast[] }) {
  return (
    <div className="toasts" role="status" aria-live="polite" aria-atomic="false">
      {toasts.map((x) => (
        <p key={x.id} className={`toast ${x.tone}`}>
          {x.text}
        </p>
      ))}
    </div>
  );
}
