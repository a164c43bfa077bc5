import type { ComponentChildren } from "preact";

/** Label/value pairs that wrap on small screens. */
export function Metrics({ items }: { items: [string, ComponentChildren][] }) {
  return (
    <dl class="metrics">
      {items.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
