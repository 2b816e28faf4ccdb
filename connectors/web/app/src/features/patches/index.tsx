// Placeholder until this area is built.
export function PatchesView() {
  return <p>patches</p>;
}
