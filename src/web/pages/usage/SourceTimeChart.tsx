import type { UsageRange } from '../../api.ts';
import { formatMeasure, type Measure } from '../../format.ts';
import { Axis } from './Axis.tsx';
import { axisLabels } from './buckets.ts';
import { type ChartModel, seriesMatches } from './sources-model.ts';

const WIDTH = 1000;
const HEIGHT = 160;

/** Top 7 sources + Other, stacked per bucket; series outside the selection are dimmed. */
export function SourceTimeChart({
  model,
  range,
  selected,
  onSelect,
  served,
  measure = 'tokens',
}: {
  served?: { from: string | null; to: string | null };
  measure?: Measure;
  model: ChartModel;
  range: UsageRange;
  selected: string | null;
  onSelect: (id: string | null) => void;
}) {
  const labels = axisLabels(range, model.labels, Date.now(), served);
  const stackTotal = (label: string) =>
    [...(model.values.get(label)?.values() ?? [])].reduce((sum, value) => sum + value, 0);
  const max = Math.max(measure === 'cost' ? 1e-9 : 1, ...labels.map(stackTotal));
  const slot = WIDTH / Math.max(labels.length, 1);
  const bar = Math.max(1, slot * 0.72);
  return (
    <div className="chart-frame">
      <div className="card-head" style={{ marginBottom: 8 }}>
        <h2>Top sources over time</h2>
        <span className="small muted">
          peak {formatMeasure(measure, max)}
          {measure === 'cost' ? '' : ' tokens'}
        </span>
      </div>
      <svg
        className="chart"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        preserveAspectRatio="none"
        height={160}
        role="img"
        aria-label={`Tokens per bucket for ${model.series.length} series`}
        data-testid="source-chart"
      >
        <line x1={0} x2={WIDTH} y1={HEIGHT - 0.5} y2={HEIGHT - 0.5} stroke="var(--border)" />
        {labels.map((label, index) => {
          const row = model.values.get(label);
          if (!row) return null;
          let base = HEIGHT;
          const x = index * slot + (slot - bar) / 2;
          return (
            <g key={label}>
              {model.series.map((series) => {
                const value = row.get(series.id) ?? 0;
                if (value <= 0) return null;
                const h = (value / max) * (HEIGHT - 4);
                base -= h;
                const dimmed = !seriesMatches(selected, series);
                return (
                  <rect
                    key={series.id}
                    x={x}
                    y={base}
                    width={bar}
                    height={h}
                    fill={series.color}
                    opacity={dimmed ? 0.25 : 1}
                    data-series={series.id}
                    data-dimmed={dimmed ? 'true' : 'false'}
                  >
                    <title>{`${label} - ${series.label}: ${value.toLocaleString('en-US')}`}</title>
                  </rect>
                );
              })}
            </g>
          );
        })}
      </svg>
      <Axis labels={labels} slots={labels.length} />
      <ul className="legend ribbon-legend" aria-label="Series" style={{ listStyle: 'none', padding: 0 }}>
        {model.series.map((series) => (
          <li key={series.id}>
            <button
              type="button"
              className="legend-item"
              data-testid="series-legend"
              data-series={series.id}
              aria-pressed={selected === series.id}
              style={{ opacity: seriesMatches(selected, series) ? 1 : 0.45 }}
              onClick={() => onSelect(selected === series.id ? null : series.id)}
            >
              <span className="swatch" style={{ background: series.color }} />
              {series.label}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
