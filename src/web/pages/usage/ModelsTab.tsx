import { createColumnHelper } from '@tanstack/react-table';
import { Download } from 'lucide-react';
import { useMemo } from 'react';
import type { UsageBucket, UsageRange } from '../../api.ts';
import { DataTable } from '../../components/DataTable.tsx';
import { Empty } from '../../components/States.tsx';
import { formatCount, formatTokens, type Measure, percent, sumUsd } from '../../format.ts';
import { CostCell } from './CostCell.tsx';
import { downloadCsv, toCsv } from './csv.ts';

interface ModelRow {
  model: string;
  requests: number;
  prompt: number;
  completion: number;
  total: number;
  cost: number;
  unpriced: number;
}

const column = createColumnHelper<ModelRow>();

/** A row's figure in the page's measure. */
const figureOf = (row: ModelRow, measure: Measure) => (measure === 'cost' ? row.cost : row.total);

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
  const rows = useMemo<ModelRow[]>(
    () =>
      [...aggregateBy(buckets, (b) => b.model || '(unknown)').entries()]
        .map(([model, totals]) => ({ model, ...totals }))
        .sort((a, b) => (measure === 'cost' ? b.cost - a.cost : 0) || b.total - a.total),
    [buckets, measure],
  );
  const max = Math.max(measure === 'cost' ? 1e-9 : 1, ...rows.map((row) => figureOf(row, measure)));
  const grand =
    measure === 'cost' ? sumUsd(rows.map((r) => r.cost)) : rows.reduce((sum, r) => sum + r.total, 0);
  const columns = useMemo(
    () => [
      column.accessor('model', { header: 'Model', cell: (info) => <strong>{info.getValue()}</strong> }),
      column.accessor('requests', {
        header: 'Requests',
        meta: { className: 'num' },
        cell: (i) => formatCount(i.getValue()),
      }),
      column.accessor('prompt', {
        header: 'Prompt',
        meta: { className: 'num' },
        cell: (i) => formatTokens(i.getValue()),
      }),
      column.accessor('completion', {
        header: 'Completion',
        meta: { className: 'num' },
        cell: (i) => formatTokens(i.getValue()),
      }),
      column.accessor('total', {
        header: 'Total',
        meta: { className: 'num' },
        cell: (i) =>
          measure === 'cost' ? formatTokens(i.getValue()) : <strong>{formatTokens(i.getValue())}</strong>,
      }),
      column.accessor('cost', {
        header: 'Cost',
        meta: { className: 'num' },
        cell: (i) => (
          <CostCell
            cost={i.getValue()}
            unpriced={i.row.original.unpriced}
            requests={i.row.original.requests}
            model={i.row.original.model}
            admin={admin}
            strong={measure === 'cost'}
          />
        ),
      }),
      column.display({
        id: 'share',
        header: 'Share',
        cell: (info) => (
          <div className="row" style={{ flexWrap: 'nowrap' }}>
            <div className="bar-track" style={{ flex: 1 }}>
              <div
                className="bar-fill"
                style={{ width: `${(figureOf(info.row.original, measure) / max) * 100}%` }}
              />
            </div>
            <span className="small muted">{percent(figureOf(info.row.original, measure), grand)}%</span>
          </div>
        ),
      }),
    ],
    [max, grand, measure, admin],
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
      `keytally-models-${range.from ? `${range.from.slice(0, 10)}_${range.to?.slice(0, 10)}` : range.period}.csv`,
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
        rows.map((r) => [r.model, r.requests, r.prompt, r.completion, r.total, r.cost, r.unpriced]),
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
      <DataTable data={rows} columns={columns} caption="Usage by model" />
    </section>
  );
}
