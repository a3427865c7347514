import { percentages } from '../../format.ts';

const SEGMENTS = [
  { source: 'apikey', color: 'var(--color-primary)' },
  { source: 'web', color: 'var(--color-info)' },
  { source: 'legacy', color: 'var(--color-warning)' },
] as const;

/** Share of tokens (or cost) per source class; clicking a segment selects every series of that class. */
export function SourceMixRibbon({
  tokensBySource,
  keyCount,
  selected,
  onSelect,
}: {
  /** The measure's figure per source class (tokens or USD). */
  tokensBySource: Partial<Record<string, number>>;
  keyCount: number;
  selected: string | null;
  onSelect: (id: string | null) => void;
}) {
  const shares = percentages(SEGMENTS.map((segment) => tokensBySource[segment.source] ?? 0));
  const parts = SEGMENTS.map((segment, index) => {
    const p = shares[index] ?? 0;
    const label =
      segment.source === 'apikey'
        ? `${p}% API keys (${keyCount})`
        : segment.source === 'web'
          ? `${p}% Web UI`
          : `${p}% Legacy`;
    return { ...segment, p, label };
  });
  const visible = parts.filter((part) => (tokensBySource[part.source] ?? 0) > 0);
  const aria = `Source mix: ${parts.map((part) => part.label.replace(/ \(\d+\)$/, '')).join(', ')}`;
  const toggle = (source: string) => onSelect(selected === source ? null : source);
  return (
    <section className="card ribbon-card" aria-label="Source mix" data-testid="source-mix">
      <fieldset className="ribbon" aria-label={aria}>
        {visible.map((part) => (
          <button
            key={part.source}
            type="button"
            style={{ flexGrow: Math.max(part.p, 1), background: part.color }}
            aria-pressed={selected === part.source}
            aria-label={part.label}
            title={part.label}
            onClick={() => toggle(part.source)}
          />
        ))}
      </fieldset>
      <div className="legend ribbon-legend">
        {visible.map((part) => (
          <button
            key={part.source}
            type="button"
            className="legend-item"
            onClick={() => toggle(part.source)}
            aria-pressed={selected === part.source}
            data-testid={`ribbon-${part.source}`}
          >
            <span className="swatch" style={{ background: part.color }} />
            {part.label}
          </button>
        ))}
      </div>
    </section>
  );
}
