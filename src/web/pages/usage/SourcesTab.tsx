import { createColumnHelper } from '@tanstack/react-table';
import { AlertTriangle, Download, Filter, Globe, KeyRound, Search, Settings2, X } from 'lucide-react';
import { useMemo } from 'react';
import { rangeQuery, type UsageRange } from '../../api.ts';
import { DataTable } from '../../components/DataTable.tsx';
import { Empty, ErrorState, Loading } from '../../components/States.tsx';
import { formatCount, formatRelative, formatTokens, type Measure } from '../../format.ts';
import { useUsageSources } from '../../hooks/useUsageSources.ts';
import { useQueryState } from '../../router.ts';
import { CostCell } from './CostCell.tsx';
import { downloadCsv, toCsv } from './csv.ts';
import { SourceMixRibbon } from './SourceMixRibbon.tsx';
import { SourceTimeChart } from './SourceTimeChart.tsx';
import {
  buildChart,
  buildRows,
  filterRows,
  matchesSelection,
  SORT_KEYS,
  type SortKey,
  type SourceRow,
  selectionLabel,
  sortRows,
} from './sources-model.ts';

const SORT_LABELS: Record<SortKey, string> = {
  tokens: 'Tokens',
  cost: 'Cost',
  requests: 'Requests',
  last_used: 'Last used',
  name: 'Name',
  user: 'User',
};

const column = createColumnHelper<SourceRow>();

function RowIcon({ kind }: { kind: SourceRow['kind'] }) {
  if (kind === 'web') return <Globe size={15} aria-hidden="true" className="muted" />;
  if (kind === 'legacy') return <Settings2 size={15} aria-hidden="true" className="muted" />;
  return <KeyRound size={15} aria-hidden="true" className="muted" />;
}

/**
 * Usage by source. Selection (`sel`), search (`q`) and sort (`sort`) live in the URL, so they
 * survive period changes, refreshes and reloads; the data keeps showing while a new range loads.
 */
export function SourcesTab({
  range,
  admin,
  userId,
  measure = 'tokens',
}: {
  range: UsageRange;
  admin: boolean;
  userId?: string;
  measure?: Measure;
}) {
  const [query, setQuery] = useQueryState();
  const sources = useUsageSources(range, admin, userId);
  const selected = query.get('sel');
  const search = query.get('q') ?? '';
  const sortParam = query.get('sort') as SortKey | null;
  const sort: SortKey =
    sortParam && SORT_KEYS.includes(sortParam) && (admin || sortParam !== 'user')
      ? sortParam
      : measure === 'cost'
        ? 'cost'
        : 'tokens';
  const defaultSort: SortKey = measure === 'cost' ? 'cost' : 'tokens';
  const select = (id: string | null) => setQuery({ sel: id });

  const chart = useMemo(
    () => (sources.data ? buildChart(sources.data, admin, measure) : null),
    [sources.data, admin, measure],
  );
  const allRows = useMemo(() => (sources.data ? buildRows(sources.data, admin) : []), [sources.data, admin]);
  const rows = useMemo(() => sortRows(filterRows(allRows, search), sort), [allRows, search, sort]);

  const columns = useMemo(
    () => [
      column.accessor('name', {
        header: 'Name',
        meta: { sortKey: 'name', sortDirection: 'ascending' },
        cell: (info) => (
          <span className="name-cell">
            <RowIcon kind={info.row.original.kind} />
            <span>{info.getValue()}</span>
            {info.row.original.revoked ? <span className="badge badge-danger">revoked</span> : null}
          </span>
        ),
      }),
      ...(admin
        ? [
            column.accessor((row) => row.userName || row.userId || '—', {
              id: 'user',
              header: 'User',
              meta: { sortKey: 'user', sortDirection: 'ascending' },
            }),
          ]
        : []),
      column.accessor('prefix', {
        header: 'Prefix',
        cell: (info) =>
          info.getValue() ? <code>{info.getValue()}…</code> : <span className="muted">—</span>,
      }),
      column.accessor('requests', {
        header: 'Requests',
        meta: { className: 'num', sortKey: 'requests' },
        cell: (info) => formatCount(info.getValue()),
      }),
      column.accessor('tokens', {
        header: 'Tokens',
        meta: { className: 'num', sortKey: 'tokens' },
        cell: (info) => <span title={formatCount(info.getValue())}>{formatTokens(info.getValue())}</span>,
      }),
      column.accessor('cost', {
        header: 'Cost',
        meta: { className: 'num', sortKey: 'cost' },
        cell: (info) => (
          <CostCell
            cost={info.getValue()}
            unpriced={info.row.original.unpriced}
            requests={info.row.original.requests}
            admin={false}
            strong={measure === 'cost'}
          />
        ),
      }),
      column.accessor('lastUsed', {
        header: 'Last used',
        meta: { className: 'num', sortKey: 'last_used' },
        cell: (info) => formatRelative(info.getValue()),
      }),
    ],
    [admin, measure],
  );

  if (sources.isPending) return <Loading label="Loading sources…" />;
  if (sources.isError) return <ErrorState error={sources.error} onRetry={() => sources.refetch()} />;
  const data = sources.data;
  const empty = data.totals.grand_total.tokens === 0 && data.totals.grand_total.requests === 0;

  const exportCsv = () => {
    const header = [
      'kind',
      'name',
      ...(admin ? ['user'] : []),
      'prefix',
      'requests',
      'tokens',
      'cost_usd',
      'unpriced_requests',
      'last_used',
      'revoked',
    ];
    const body = rows.map((row) => [
      row.kind,
      row.name,
      ...(admin ? [row.userName || row.userId] : []),
      row.prefix,
      row.requests,
      row.tokens,
      row.cost,
      row.unpriced,
      row.lastUsed,
      row.revoked,
    ]);
    const period =
      range.from && range.to ? `${range.from.slice(0, 10)}_${range.to.slice(0, 10)}` : range.period;
    downloadCsv(`keytally-sources-${period}.csv`, toCsv(header, body));
  };

  if (empty) {
    return (
      <section className="card">
        <Empty title="No requests in this period.">
          Once requests come in, you'll see them broken down here.
        </Empty>
      </section>
    );
  }

  return (
    <div className="stack" data-testid="sources-tab" aria-busy={sources.isFetching}>
      <section className="card">
        <SourceMixRibbon
          measure={measure}
          bySource={data.totals.by_source}
          keyCount={data.totals.by_key?.length ?? 0}
          selected={selected}
          onSelect={select}
        />
      </section>
      {selected && chart ? (
        <div>
          <span className="chip" data-testid="filter-chip">
            <Filter size={14} aria-hidden="true" />
            <span className="chip-label">Filtered to: {selectionLabel(selected, allRows, chart.series)}</span>
            <button type="button" aria-label="Clear filter" onClick={() => select(null)}>
              <X size={14} aria-hidden="true" />
            </button>
          </span>
        </div>
      ) : null}
      {chart ? (
        <section className="card">
          <SourceTimeChart
            measure={measure}
            model={chart}
            range={range}
            selected={selected}
            onSelect={select}
            served={data.window}
          />
        </section>
      ) : null}
      <section className="card" aria-labelledby="sources-table-title">
        <div className="card-head" style={{ marginBottom: 12 }}>
          <h2 id="sources-table-title">Keys and sources</h2>
          <div className="row">
            <a
              className="btn btn-sm btn-ghost"
              href={`/api/auth/${admin ? 'admin/' : ''}usage/export?${rangeQuery(range, { format: 'csv', user_id: userId })}`}
              title="Every recorded request in this range, one row each"
            >
              Raw rows
            </a>
            <button type="button" className="btn btn-sm" onClick={exportCsv} disabled={rows.length === 0}>
              <Download size={14} aria-hidden="true" />
              Export CSV
            </button>
          </div>
        </div>
        <div className="table-tools">
          <div className="search">
            <Search size={15} aria-hidden="true" />
            <label htmlFor="sources-search" className="sr-only">
              Search sources
            </label>
            <input
              id="sources-search"
              className="input"
              type="search"
              placeholder="Search by name or prefix"
              value={search}
              onChange={(e) => setQuery({ q: e.target.value })}
            />
          </div>
          <span className="spacer" />
          <div className="row" style={{ flexWrap: 'nowrap' }}>
            <label htmlFor="sources-sort" className="label">
              Sort
            </label>
            <select
              id="sources-sort"
              className="select"
              value={sort}
              onChange={(e) => setQuery({ sort: e.target.value === defaultSort ? null : e.target.value })}
            >
              {SORT_KEYS.filter((key) => admin || key !== 'user').map((key) => (
                <option key={key} value={key}>
                  {SORT_LABELS[key]}
                </option>
              ))}
            </select>
          </div>
        </div>
        {rows.length === 0 ? (
          <Empty title="Nothing matches">No key or source matches “{search.trim()}”.</Empty>
        ) : (
          <DataTable
            data={rows}
            columns={columns}
            caption="Usage by API key and source"
            sort={sort}
            onSort={(key) => setQuery({ sort: key === defaultSort ? null : key })}
            rowProps={(row) => {
              const isSelected = selected === row.original.id;
              const highlighted =
                selected !== null && matchesSelection(selected, row.original.id, row.original.kind);
              return {
                className: `clickable${row.original.revoked ? ' revoked' : ''}`,
                'aria-selected': isSelected || highlighted,
                'data-testid': 'source-row',
                'data-row-id': row.original.id,
                tabIndex: 0,
                onClick: () => select(isSelected ? null : row.original.id),
                onKeyDown: (event: React.KeyboardEvent) => {
                  if (event.key === 'Enter' || event.key === ' ') {
                    event.preventDefault();
                    select(isSelected ? null : row.original.id);
                  }
                },
              };
            }}
          />
        )}
        {data.truncated ? (
          <div className="alert alert-warning" role="status" style={{ marginTop: 12 }}>
            <AlertTriangle size={16} aria-hidden="true" />
            <span>Showing top 200 keys. Apply a filter to narrow further.</span>
          </div>
        ) : null}
      </section>
    </div>
  );
}
