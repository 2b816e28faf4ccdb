// Placeholder until this area is built.
export function AssistantView() {
  return <p>assistant</p>;
}
