import { useMemo } from 'react';
import type { UsageBucket, UsageRange, UsageResponse } from '../../api.ts';
import { TimeChart } from '../../components/chart/TimeChart.tsx';
import { Link } from '../../components/Link.tsx';
import { Empty } from '../../components/States.tsx';
import { formatTick, formatTokens, formatUsd, type Measure, sumUsd } from '../../format.ts';
import { axisLabels, compareLabel, project, projectionHorizon } from './buckets.ts';
import { SummaryCards } from './SummaryCards.tsx';

// Fixed hues (the canvas cannot read CSS variables per series): Okabe-Ito blue and orange.
const PROMPT_COLOR = '#0072b2';
const COMPLETION_COLOR = '#e69f00';
const COST_COLOR = '#009e73';

/** Axis ticks in dollars: `$1.50`, `$0.02`, `$0`. */
const formatUsdTick = (value: number) => formatUsd(Math.round(value * 1e6) / 1e6);

/** Summary cards and the tokens-over-time chart of the Models and Users tabs, from one usage dataset. */
export function Overview({
  data,
  range,
  measure = 'tokens',
}: {
  data: UsageResponse;
  range: UsageRange;
  measure?: Measure;
}) {
  const buckets: UsageBucket[] = data.usage;
  const model = useMemo(() => {
    const byLabel = new Map<string, { prompt: number; completion: number; cost: number }>();
    let requests = 0;
    let unpriced = 0;
    for (const b of buckets) {
      const entry = byLabel.get(b.bucket) ?? { prompt: 0, completion: 0, cost: 0 };
      entry.prompt += b.prompt_tokens;
      entry.completion += b.completion_tokens;
      entry.cost = sumUsd([entry.cost, b.cost]);
      byLabel.set(b.bucket, entry);
      requests += b.request_count;
      unpriced += b.unpriced_requests;
    }
    const labels = axisLabels(range, [...byLabel.keys()], Date.now(), data.window);
    const prompt = labels.map((label) => byLabel.get(label)?.prompt ?? 0);
    const completion = labels.map((label) => byLabel.get(label)?.completion ?? 0);
    const cost = labels.map((label) => byLabel.get(label)?.cost ?? 0);
    const horizon = projectionHorizon(range);
    const perBucket = measure === 'cost' ? cost : prompt.map((p, i) => p + (completion[i] ?? 0));
    const ahead = horizon ? project(perBucket, horizon.buckets) : null;
    const sum = (values: number[]) => values.reduce((s, v) => s + v, 0);
    return {
      labels,
      series:
        measure === 'cost'
          ? [{ id: 'cost', label: 'Cost (priced requests)', color: COST_COLOR, values: cost }]
          : [
              { id: 'prompt', label: 'Prompt', color: PROMPT_COLOR, values: prompt },
              { id: 'completion', label: 'Completion', color: COMPLETION_COLOR, values: completion },
            ],
      totals: {
        requests,
        prompt: sum(prompt),
        completion: sum(completion),
        total: buckets.reduce((s, b) => s + b.total_tokens, 0),
        cost: sumUsd(cost),
        unpriced,
      },
      projection: { label: horizon?.label ?? null, value: ahead ? sum(ahead) : null },
    };
  }, [buckets, range, data.window, measure]);

  const empty = model.totals.total === 0 && model.totals.requests === 0;
  return (
    <>
      <SummaryCards
        totals={model.totals}
        previous={data.previous}
        projection={model.projection}
        compareLabel={compareLabel(range)}
        measure={measure}
      />
      {empty ? (
        <section className="card" style={{ marginBottom: 24 }}>
          <Empty title="No usage in this period">
            Requests through the gateway show up here. <Link href="/app/chat">Try the chat</Link> or{' '}
            <Link href="/app/account">create an API key</Link>.
          </Empty>
        </section>
      ) : (
        <TimeChart
          title={measure === 'cost' ? 'Cost over time' : 'Tokens over time'}
          titleId="tokens-over-time"
          labels={model.labels}
          series={model.series}
          format={measure === 'cost' ? formatUsdTick : formatTick}
          formatExact={measure === 'cost' ? formatUsd : formatTokens}
          legend={
            <ul className="legend" aria-label="Series">
              {model.series.map((s) => (
                <li key={s.id} className="legend-item">
                  <span className="swatch" style={{ background: s.color }} />
                  {s.label}
                </li>
              ))}
            </ul>
          }
        />
      )}
    </>
  );
}
