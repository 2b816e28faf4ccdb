// Placeholder until this area is built.
export function OpsView() {
  return <p>ops</p>;
}
