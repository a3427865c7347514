import { Download } from 'lucide-react';
import { useMemo } from 'react';
import type { UsageBucket, UsageRange } from '../../api.ts';
import { Empty } from '../../components/States.tsx';
import { type Measure, sumUsd } from '../../format.ts';
import { type BreakdownRow, BreakdownTable } from './BreakdownTable.tsx';
import { downloadCsv, toCsv } from './csv.ts';

export function aggregateBy<K extends string>(buckets: UsageBucket[], keyOf: (b: UsageBucket) => K) {
  const rows = new Map<
    K,
    { requests: number; prompt: number; completion: number; total: number; cost: number; unpriced: number }
  >();
  for (const b of buckets) {
    const key = keyOf(b);
    const row = rows.get(key) ?? { requests: 0, prompt: 0, completion: 0, total: 0, cost: 0, unpriced: 0 };
    row.requests += b.request_count;
    row.prompt += b.prompt_tokens;
    row.completion += b.completion_tokens;
    row.total += b.total_tokens;
    row.cost = sumUsd([row.cost, b.cost]);
    row.unpriced += b.unpriced_requests;
    rows.set(key, row);
  }
  return rows;
}

export function periodSlug(range: UsageRange): string {
  return range.from && range.to ? `${range.from.slice(0, 10)}_${range.to.slice(0, 10)}` : range.period;
}

export function ModelsTab({
  buckets,
  range,
  measure = 'tokens',
  admin = false,
}: {
  buckets: UsageBucket[];
  range: UsageRange;
  measure?: Measure;
  admin?: boolean;
}) {
  const rows = useMemo<BreakdownRow[]>(
    () =>
      [...aggregateBy(buckets, (b) => b.model || '(unknown)').entries()]
        .map(([model, totals]) => ({ id: model, name: model, ...totals }))
        .sort((a, b) => b.total - a.total),
    [buckets],
  );
  if (rows.length === 0) {
    return (
      <section className="card">
        <Empty title="No usage data">No model was used in this period.</Empty>
      </section>
    );
  }
  const exportCsv = () =>
    downloadCsv(
      `keytally-models-${periodSlug(range)}.csv`,
      toCsv(
        [
          'model',
          'requests',
          'prompt_tokens',
          'completion_tokens',
          'total_tokens',
          'cost_usd',
          'unpriced_requests',
        ],
        rows.map((r) => [r.name, r.requests, r.prompt, r.completion, r.total, r.cost, r.unpriced]),
      ),
    );
  return (
    <section className="card" aria-labelledby="models-title">
      <div className="card-head">
        <h2 id="models-title">{measure === 'cost' ? 'Cost by model' : 'Token distribution by model'}</h2>
        <button type="button" className="btn btn-sm" onClick={exportCsv}>
          <Download size={14} aria-hidden="true" />
          Export CSV
        </button>
      </div>
      <BreakdownTable
        rows={rows}
        caption="Usage by model"
        nameHeader="Model"
        measure={measure}
        admin={admin}
        linkModels
      />
    </section>
  );
}
