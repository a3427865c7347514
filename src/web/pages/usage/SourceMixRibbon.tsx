import type { TotalsEntry } from '../../api.ts';
import { type Measure, percent } from '../../format.ts';

const SEGMENTS = [
  { source: 'apikey', color: 'var(--color-primary)' },
  { source: 'web', color: 'var(--color-info)' },
  { source: 'legacy', color: 'var(--color-warning)' },
] as const;

/** Share of tokens (or cost) per source class; clicking a segment selects every series of that class. */
export function SourceMixRibbon({
  bySource,
  keyCount,
  selected,
  onSelect,
  measure = 'tokens',
}: {
  measure?: Measure;
  bySource: Partial<Record<string, TotalsEntry>>;
  keyCount: number;
  selected: string | null;
  onSelect: (id: string | null) => void;
}) {
  const tokens = (source: string) =>
    (measure === 'cost' ? bySource[source]?.cost : bySource[source]?.tokens) ?? 0;
  const total = SEGMENTS.reduce((sum, segment) => sum + tokens(segment.source), 0);
  const parts = SEGMENTS.map((segment) => {
    const p = percent(tokens(segment.source), total);
    const label =
      segment.source === 'apikey'
        ? `${p}% API keys (${keyCount})`
        : segment.source === 'web'
          ? `${p}% Web UI`
          : `${p}% Legacy`;
    return { ...segment, p, label };
  });
  const visible = parts.filter((part) => part.p > 0);
  const aria = parts.map((part) => part.label.replace(/ \(\d+\)$/, '')).join(', ');
  const toggle = (source: string) => onSelect(selected === source ? null : source);
  return (
    <div>
      <div className="card-head" style={{ marginBottom: 12 }}>
        <h2>Source mix</h2>
      </div>
      <fieldset className="ribbon" aria-label={aria}>
        {visible.map((part) => (
          <button
            key={part.source}
            type="button"
            style={{ width: `${part.p}%`, background: part.color }}
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
    </div>
  );
}
