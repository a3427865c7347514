import type { UseQueryResult } from '@tanstack/react-query';
import { useMemo } from 'react';
import type { UsageRange, UsageResponse } from '../../api.ts';
import { Empty, ErrorState, Loading } from '../../components/States.tsx';
import { type Measure, sumUsd } from '../../format.ts';
import { type BreakdownRow, BreakdownTable } from './BreakdownTable.tsx';
import { axisLabels, project, projectionHorizon } from './buckets.ts';

/** The legacy keys' pseudo-user (LocalAI's name for it) is the shared key, not a person. */
const LEGACY_PSEUDO_USER = 'API Key User';

function renderUser(row: BreakdownRow) {
  const legacy = row.name === LEGACY_PSEUDO_USER;
  return (
    <span className="name-cell">
      <span className="avatar" style={{ width: 24, height: 24, fontSize: 11 }} aria-hidden="true">
        {legacy ? '#' : row.name.slice(0, 1).toUpperCase()}
      </span>
      <strong>{legacy ? 'Shared legacy key' : row.name}</strong>
      {legacy ? <span className="badge">legacy</span> : null}
    </span>
  );
}

/** Usage per user (admin). Choosing a user filters the whole page, including the Sources tab. */
export function UsersTab({
  query,
  range,
  selectedUserId,
  onSelect,
  measure = 'tokens',
}: {
  measure?: Measure;
  query: UseQueryResult<UsageResponse>;
  range: UsageRange;
  selectedUserId: string | null;
  onSelect: (id: string | null) => void;
}) {
  const horizon = projectionHorizon(range);
  const rows = useMemo<BreakdownRow[]>(() => {
    const buckets = query.data?.usage ?? [];
    const labels = axisLabels(
      range,
      buckets.map((b) => b.bucket),
      Date.now(),
      query.data?.window,
    );
    const byUser = new Map<string, BreakdownRow & { series: Map<string, number> }>();
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
      const before = row.series.get(b.bucket) ?? 0;
      row.series.set(b.bucket, measure === 'cost' ? sumUsd([before, b.cost]) : before + b.total_tokens);
      byUser.set(id, row);
    }
    return [...byUser.values()].map(({ series, ...row }) => {
      const ahead = horizon
        ? project(
            labels.map((l) => series.get(l) ?? 0),
            horizon.buckets,
          )
        : null;
      return { ...row, projected: ahead ? ahead.reduce((s, v) => s + v, 0) : null };
    });
  }, [query.data, range, horizon, measure]);
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
      <BreakdownTable
        rows={rows}
        caption="Usage by user"
        nameHeader="User"
        renderName={renderUser}
        measure={measure}
        // The projection is the usage expected over the horizon, not a projected period total.
        projectionHeader={horizon ? `Projected, ${horizon.label}` : null}
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
