import { formatMeasure, type Measure } from '../../format.ts';
import { Axis } from './Axis.tsx';

export interface TokenPoint {
  label: string;
  prompt: number;
  completion: number;
}

const WIDTH = 1000;
const HEIGHT = 200;

/**
 * Stacked prompt/completion bars per bucket, then dashed bars for the projected buckets. In cost
 * mode each point's `prompt` is the bucket's cost in USD (one series, no completion part).
 */
export function TokensChart({
  points,
  projected,
  measure = 'tokens',
}: {
  points: TokenPoint[];
  projected: number[];
  measure?: Measure;
}) {
  const format = (value: number) => formatMeasure(measure, value);
  const cost = measure === 'cost';
  const slots = points.length + projected.length;
  const max = Math.max(cost ? 1e-9 : 1, ...points.map((p) => p.prompt + p.completion), ...projected);
  const slot = WIDTH / Math.max(slots, 1);
  const bar = Math.max(1, slot * 0.72);
  const y = (value: number) => (value / max) * (HEIGHT - 4);
  const summary = `${points.length} buckets, peak ${format(max)}${cost ? '' : ' tokens'}`;
  return (
    <div className="chart-frame">
      <div className="row small muted" style={{ justifyContent: 'space-between', marginBottom: 4 }}>
        <span>{format(max)}</span>
      </div>
      <svg
        className="chart"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        preserveAspectRatio="none"
        height={180}
        role="img"
        aria-label={`${cost ? 'Cost' : 'Tokens'} over time: ${summary}`}
      >
        <line x1={0} x2={WIDTH} y1={HEIGHT - 0.5} y2={HEIGHT - 0.5} stroke="var(--border)" />
        {points.map((point, index) => {
          const x = index * slot + (slot - bar) / 2;
          const hPrompt = y(point.prompt);
          const hCompletion = y(point.completion);
          return (
            <g key={point.label}>
              <title>
                {cost
                  ? `${point.label}: ${format(point.prompt)}`
                  : `${point.label}: ${point.prompt.toLocaleString('en-US')} prompt + ${point.completion.toLocaleString('en-US')} completion`}
              </title>
              <rect
                x={x}
                width={bar}
                y={HEIGHT - hPrompt}
                height={hPrompt}
                fill="var(--color-primary)"
                rx={1.5}
              />
              <rect
                x={x}
                width={bar}
                y={HEIGHT - hPrompt - hCompletion}
                height={hCompletion}
                fill="var(--color-info)"
                opacity={0.75}
                rx={1.5}
              />
            </g>
          );
        })}
        {projected.map((value, index) => {
          const x = (points.length + index) * slot + (slot - bar) / 2;
          const h = y(value);
          return (
            // biome-ignore lint/suspicious/noArrayIndexKey: projected slots have no identity
            <g key={`p${index}`}>
              <title>
                {cost
                  ? `Projected: ${format(value)}`
                  : `Projected: ${Math.round(value).toLocaleString('en-US')} tokens`}
              </title>
              <rect
                x={x}
                width={bar}
                y={HEIGHT - h}
                height={h}
                fill="none"
                stroke="var(--muted)"
                strokeDasharray="4 3"
                vectorEffect="non-scaling-stroke"
              />
            </g>
          );
        })}
      </svg>
      <Axis labels={points.map((p) => p.label)} slots={slots} />
      <div className="legend" aria-hidden="true">
        <span className="legend-item">
          <span className="swatch" style={{ background: 'var(--color-primary)' }} />
          {cost ? 'Cost (priced requests)' : 'Prompt'}
        </span>
        {cost ? null : (
          <span className="legend-item">
            <span className="swatch" style={{ background: 'var(--color-info)', opacity: 0.75 }} />
            Completion
          </span>
        )}
        {projected.length ? (
          <span className="legend-item">
            <span className="swatch dashed" />
            Projected
          </span>
        ) : null}
      </div>
    </div>
  );
}
