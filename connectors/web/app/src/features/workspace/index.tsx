// Placeholder until this area is built.
export function WorkspaceView() {
  return <p>workspace</p>;
}
