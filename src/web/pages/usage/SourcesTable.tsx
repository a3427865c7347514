import { createColumnHelper } from '@tanstack/react-table';
import { AlertTriangle, Download, Globe, KeyRound, Search, Settings2 } from 'lucide-react';
import { useMemo } from 'react';
import { rangeQuery, type UsageRange } from '../../api.ts';
import { OTHER_COLOR } from '../../components/chart/colors.ts';
import { Sparkline } from '../../components/chart/Sparkline.tsx';
import { DataTable } from '../../components/DataTable.tsx';
import { Empty } from '../../components/States.tsx';
import { formatCount, formatRelative, formatTokens, type Measure } from '../../format.ts';
import { CostCell } from './CostCell.tsx';
import { downloadCsv, toCsv } from './csv.ts';
import { periodSlug } from './ModelsTab.tsx';
import {
  DEFAULT_DIRECTION,
  LEGACY_USER_LABEL,
  SORT_KEYS,
  type SortDirection,
  type SortKey,
  type SourceRow,
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

/** The Sources tab's table: search, both-way sort, CSV export, and a row click to drill in. */
export function SourcesTable({
  rows,
  admin,
  range,
  userId,
  search,
  sort,
  direction,
  selected,
  colors,
  truncated,
  onSearch,
  onSort,
  onSelect,
  measure = 'tokens',
}: {
  measure?: Measure;
  rows: SourceRow[];
  admin: boolean;
  range: UsageRange;
  userId?: string;
  search: string;
  sort: SortKey;
  direction: SortDirection;
  selected: string | null;
  /** Colour of the chart series each row draws in (rows folded into Other are grey). */
  colors: Map<string, string>;
  truncated: boolean;
  onSearch: (value: string) => void;
  onSort: (key: SortKey, direction: SortDirection) => void;
  onSelect: (id: string | null) => void;
}) {
  const columns = useMemo(
    () => [
      column.accessor('name', {
        header: 'Name',
        meta: { sortKey: 'name' },
        cell: (info) => (
          <span className="name-cell">
            <span
              className="swatch"
              style={{ background: colors.get(info.row.original.id) ?? OTHER_COLOR }}
              aria-hidden="true"
            />
            <RowIcon kind={info.row.original.kind} />
            <span className="name-text">
              <span>{info.getValue()}</span>
              {admin && info.row.original.userName ? (
                // On phones the User column is hidden: the user reads under the name instead.
                <span className="phone-only small muted">{info.row.original.userName}</span>
              ) : null}
            </span>
            {info.row.original.revoked ? <span className="badge badge-danger">revoked</span> : null}
          </span>
        ),
      }),
      ...(admin
        ? [
            column.accessor((row) => row.userName || row.userId || '—', {
              id: 'user',
              header: 'User',
              meta: { sortKey: 'user', optional: true },
              cell: (info) =>
                info.getValue() === LEGACY_USER_LABEL ? (
                  <span className="muted">{LEGACY_USER_LABEL}</span>
                ) : (
                  info.getValue()
                ),
            }),
          ]
        : []),
      column.accessor('prefix', {
        header: 'Prefix',
        meta: { optional: true },
        cell: (info) =>
          info.getValue() ? <code>{info.getValue()}…</code> : <span className="muted">—</span>,
      }),
      column.accessor('requests', {
        header: 'Requests',
        meta: { className: 'num', sortKey: 'requests', optional: true },
        cell: (info) => formatCount(info.getValue()),
      }),
      // On phones the page's measure stays, the other figure goes.
      column.accessor('tokens', {
        header: 'Tokens',
        meta: { className: 'num', sortKey: 'tokens', optional: measure === 'cost' },
        cell: (info) => <span title={formatCount(info.getValue())}>{formatTokens(info.getValue())}</span>,
      }),
      column.accessor('cost', {
        header: 'Cost',
        meta: { className: 'num', sortKey: 'cost', optional: measure !== 'cost' },
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
      column.display({
        id: 'trend',
        header: 'Trend',
        meta: { optional: true },
        cell: (info) => (
          <Sparkline
            values={info.row.original.sparkline}
            color={colors.get(info.row.original.id) ?? OTHER_COLOR}
          />
        ),
      }),
      column.accessor('lastUsed', {
        header: 'Last used',
        meta: { className: 'num', sortKey: 'last_used' },
        cell: (info) => formatRelative(info.getValue()),
      }),
    ],
    [admin, colors, measure],
  );

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
    downloadCsv(`keytally-sources-${periodSlug(range)}.csv`, toCsv(header, body));
  };

  return (
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
            placeholder={admin ? 'Search by key, user or prefix' : 'Search by key or prefix'}
            value={search}
            onChange={(e) => onSearch(e.target.value)}
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
            onChange={(e) => {
              const key = e.target.value as SortKey;
              onSort(key, DEFAULT_DIRECTION[key]);
            }}
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
          direction={direction}
          onSort={(key) => {
            const next = key as SortKey;
            if (next === sort) onSort(next, direction === 'ascending' ? 'descending' : 'ascending');
            else onSort(next, DEFAULT_DIRECTION[next]);
          }}
          rowProps={(row) => {
            const isSelected = selected === row.original.id;
            const toggle = () => onSelect(isSelected ? null : row.original.id);
            return {
              className: `clickable${row.original.revoked ? ' revoked' : ''}`,
              'aria-selected': selected !== null,
              'data-testid': 'source-row',
              'data-row-id': row.original.id,
              tabIndex: 0,
              onClick: toggle,
              onKeyDown: (event: React.KeyboardEvent) => {
                if (event.key === 'Enter' || event.key === ' ') {
                  event.preventDefault();
                  toggle();
                }
              },
            };
          }}
        />
      )}
      {truncated ? (
        <div className="alert alert-warning" role="status" style={{ marginTop: 12 }}>
          <AlertTriangle size={16} aria-hidden="true" />
          <span>Showing top 200 keys. Apply a filter to narrow further.</span>
        </div>
      ) : null}
    </section>
  );
}
