import type { UseQueryResult } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import type { UsageRange, UsageResponse } from '../../api.ts';
import { DataTable } from '../../components/DataTable.tsx';
import { Empty, ErrorState, Loading } from '../../components/States.tsx';
import { formatCount, formatMeasure, formatTokens, type Measure, sumUsd } from '../../format.ts';
import { axisLabels, project, projectionHorizon } from './buckets.ts';
import { CostCell } from './CostCell.tsx';

interface UserRow {
  id: string;
  name: string;
  requests: number;
  prompt: number;
  completion: number;
  total: number;
  cost: number;
  unpriced: number;
  /** Projected tokens or cost, by the page's measure. */
  projected: number | null;
}

const column = createColumnHelper<UserRow>();

/** A row's figure in the page's measure. */
const figureOf = (row: UserRow, measure: Measure) => (measure === 'cost' ? row.cost : row.total);

/** Usage per user (admin). Choosing a user filters the whole page, including the Sources tab. */
export function UsersTab({
  query,
  range,
  selectedUserId,
  onSelect,
  measure = 'tokens',
}: {
  query: UseQueryResult<UsageResponse>;
  range: UsageRange;
  selectedUserId: string | null;
  onSelect: (id: string | null) => void;
  measure?: Measure;
}) {
  const rows = useMemo<UserRow[]>(() => {
    const buckets = query.data?.usage ?? [];
    const labels = axisLabels(
      range,
      buckets.map((b) => b.bucket),
    );
    const horizon = projectionHorizon(range);
    const byUser = new Map<string, UserRow & { series: Map<string, number> }>();
    for (const b of buckets) {
      const id = b.user_id ?? '';
      const row = byUser.get(id) ?? {
        id,
        name: b.user_name || id || '(unknown)',
        requests: 0,
        prompt: 0,
        completion: 0,
        total: 0,
        cost: 0,
        unpriced: 0,
        projected: null,
        series: new Map<string, number>(),
      };
      row.requests += b.request_count;
      row.prompt += b.prompt_tokens;
      row.completion += b.completion_tokens;
      row.total += b.total_tokens;
      row.cost = sumUsd([row.cost, b.cost]);
      row.unpriced += b.unpriced_requests;
      const previous = row.series.get(b.bucket) ?? 0;
      row.series.set(b.bucket, measure === 'cost' ? sumUsd([previous, b.cost]) : previous + b.total_tokens);
      byUser.set(id, row);
    }
    return [...byUser.values()]
      .map(({ series, ...row }) => {
        const ahead = horizon
          ? project(
              labels.map((l) => series.get(l) ?? 0),
              horizon.buckets,
            )
          : null;
        return { ...row, projected: ahead ? ahead.reduce((s, v) => s + v, 0) : null };
      })
      .sort((a, b) => (measure === 'cost' ? b.cost - a.cost : 0) || b.total - a.total);
  }, [query.data, range, measure]);
  const max = Math.max(measure === 'cost' ? 1e-9 : 1, ...rows.map((row) => figureOf(row, measure)));
  const columns = useMemo(
    () => [
      column.accessor('name', {
        header: 'User',
        cell: (info) => (
          <span className="name-cell">
            <span className="avatar" style={{ width: 24, height: 24, fontSize: 11 }} aria-hidden="true">
              {info.getValue().slice(0, 1).toUpperCase()}
            </span>
            <strong>{info.getValue()}</strong>
          </span>
        ),
      }),
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
            admin={false}
            strong={measure === 'cost'}
          />
        ),
      }),
      column.accessor('projected', {
        header: measure === 'cost' ? 'Proj. cost' : 'Proj. total',
        meta: { className: 'num' },
        cell: (i) => {
          const projected = i.getValue();
          return projected === null ? (
            <span className="muted">—</span>
          ) : (
            `~${formatMeasure(measure, projected)}`
          );
        },
      }),
      column.display({
        id: 'bar',
        header: () => <span className="sr-only">Share</span>,
        cell: (info) => (
          <div className="bar-track">
            <div
              className="bar-fill"
              style={{ width: `${(figureOf(info.row.original, measure) / max) * 100}%` }}
            />
          </div>
        ),
      }),
    ],
    [max, measure],
  );
  if (query.isPending) return <Loading label="Loading users…" />;
  if (query.isError) return <ErrorState error={query.error} onRetry={() => query.refetch()} />;
  if (rows.length === 0) {
    return (
      <section className="card">
        <Empty title="No usage data">Nobody used the gateway in this period.</Empty>
      </section>
    );
  }
  return (
    <section className="card" aria-labelledby="users-usage-title">
      <div className="card-head">
        <div>
          <h2 id="users-usage-title">Usage by user</h2>
          <p>Choose a user to filter the summary, the Models tab and the Sources tab to them.</p>
        </div>
      </div>
      <DataTable
        data={rows}
        columns={columns}
        caption="Usage by user"
        rowProps={(row) => {
          const isSelected = selectedUserId === row.original.id;
          return {
            className: 'clickable',
            'aria-selected': isSelected,
            'data-testid': 'user-usage-row',
            'data-user-id': row.original.id,
            tabIndex: 0,
            onClick: () => onSelect(isSelected ? null : row.original.id),
            onKeyDown: (event: React.KeyboardEvent) => {
              if (event.key === 'Enter' || event.key === ' ') {
                event.preventDefault();
                onSelect(isSelected ? null : row.original.id);
              }
            },
          };
        }}
      />
    </section>
  );
}
