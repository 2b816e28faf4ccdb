// Placeholder until this area is built.
export function FilesView() {
  return <p>files</p>;
}
