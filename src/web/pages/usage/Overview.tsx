import { useMemo } from 'react';
import type { UsageBucket, UsageRange, UsageResponse } from '../../api.ts';
import { TimeChart } from '../../components/chart/TimeChart.tsx';
import { Link } from '../../components/Link.tsx';
import { Empty } from '../../components/States.tsx';
import { formatTick, formatTokens } from '../../format.ts';
import { axisLabels, compareLabel, project, projectionHorizon } from './buckets.ts';
import { SummaryCards } from './SummaryCards.tsx';

// Fixed hues (the canvas cannot read CSS variables per series): Okabe-Ito blue and orange.
const PROMPT_COLOR = '#0072b2';
const COMPLETION_COLOR = '#e69f00';

/** Summary cards and the tokens-over-time chart of the Models and Users tabs, from one usage dataset. */
export function Overview({ data, range }: { data: UsageResponse; range: UsageRange }) {
  const buckets: UsageBucket[] = data.usage;
  const model = useMemo(() => {
    const byLabel = new Map<string, { prompt: number; completion: number }>();
    let requests = 0;
    for (const b of buckets) {
      const entry = byLabel.get(b.bucket) ?? { prompt: 0, completion: 0 };
      entry.prompt += b.prompt_tokens;
      entry.completion += b.completion_tokens;
      byLabel.set(b.bucket, entry);
      requests += b.request_count;
    }
    const labels = axisLabels(range, [...byLabel.keys()], Date.now(), data.window);
    const prompt = labels.map((label) => byLabel.get(label)?.prompt ?? 0);
    const completion = labels.map((label) => byLabel.get(label)?.completion ?? 0);
    const horizon = projectionHorizon(range);
    const ahead = horizon
      ? project(
          prompt.map((p, i) => p + (completion[i] ?? 0)),
          horizon.buckets,
        )
      : null;
    const sum = (values: number[]) => values.reduce((s, v) => s + v, 0);
    return {
      labels,
      series: [
        { id: 'prompt', label: 'Prompt', color: PROMPT_COLOR, values: prompt },
        { id: 'completion', label: 'Completion', color: COMPLETION_COLOR, values: completion },
      ],
      totals: {
        requests,
        prompt: sum(prompt),
        completion: sum(completion),
        total: buckets.reduce((s, b) => s + b.total_tokens, 0),
      },
      projection: { label: horizon?.label ?? null, value: ahead ? sum(ahead) : null },
    };
  }, [buckets, range, data.window]);

  const empty = model.totals.total === 0 && model.totals.requests === 0;
  return (
    <>
      <SummaryCards
        totals={model.totals}
        previous={data.previous}
        projection={model.projection}
        compareLabel={compareLabel(range)}
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
          title="Tokens over time"
          titleId="tokens-over-time"
          labels={model.labels}
          series={model.series}
          format={formatTick}
          formatExact={formatTokens}
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
