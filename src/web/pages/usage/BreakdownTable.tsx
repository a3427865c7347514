import { type ColumnDef, createColumnHelper, type Row } from '@tanstack/react-table';
import { type ReactNode, useMemo, useState } from 'react';
import { DataTable, type SortDirection } from '../../components/DataTable.tsx';
import { formatCount, formatMeasure, formatTokens, type Measure, percentages } from '../../format.ts';
import { CostCell } from './CostCell.tsx';

/** One line of a usage breakdown (a model, a user): what the Models and Users tabs list. */
export interface BreakdownRow {
  id: string;
  name: string;
  requests: number;
  prompt: number;
  completion: number;
  total: number;
  /** USD of the priced requests, and how many requests have no known price. */
  cost: number;
  unpriced: number;
  /** Projected tokens (or cost) over the view's horizon (Users tab); null when there is no trend. */
  projected?: number | null;
}

type BreakdownSort = 'name' | 'requests' | 'prompt' | 'completion' | 'total' | 'cost' | 'projected';
const ASCENDING_FIRST: BreakdownSort[] = ['name'];

type Line = BreakdownRow & { share: number };
const column = createColumnHelper<Line>();

/**
 * The Models and Users tables: requests, prompt, completion, total and share, sortable both ways by
 * any column (click a header again to reverse it). Name and Total stay on phones.
 */
export function BreakdownTable({
  rows,
  caption,
  nameHeader,
  renderName,
  projectionHeader,
  rowProps,
  measure = 'tokens',
  admin = false,
  linkModels = false,
}: {
  measure?: Measure;
  /** Admins get a link from a "no price" marker to the Prices page (Models tab). */
  admin?: boolean;
  linkModels?: boolean;
  rows: BreakdownRow[];
  caption: string;
  nameHeader: string;
  renderName?: (row: BreakdownRow) => ReactNode;
  /** Adds the projection column under this header (e.g. "Next 30 days"). */
  projectionHeader?: string | null;
  rowProps?: (row: Row<BreakdownRow>) => React.HTMLAttributes<HTMLTableRowElement> & Record<string, unknown>;
}) {
  const figure = measure === 'cost' ? 'cost' : 'total';
  const [sortState, setSort] = useState<{ key: BreakdownSort; direction: SortDirection } | null>(null);
  const sort = sortState ?? { key: figure, direction: 'descending' };
  const shares = useMemo(() => percentages(rows.map((row) => row[figure])), [rows, figure]);
  const max = Math.max(measure === 'cost' ? 1e-9 : 1, ...rows.map((row) => row[figure]));
  const sorted = useMemo(() => {
    const sign = sort.direction === 'ascending' ? 1 : -1;
    const amountOf = (row: BreakdownRow) => (sort.key === 'name' ? 0 : (row[sort.key] ?? -1));
    return rows
      .map((row, index) => ({ ...row, share: shares[index] ?? 0 }))
      .sort(
        (a, b) =>
          sign * (sort.key === 'name' ? a.name.localeCompare(b.name) : amountOf(a) - amountOf(b)) ||
          a.name.localeCompare(b.name),
      );
  }, [rows, shares, sort]);
  const columns = useMemo(() => {
    // biome-ignore lint/suspicious/noExplicitAny: TanStack column value types differ per column
    const list: ColumnDef<Line, any>[] = [
      column.accessor('name', {
        header: nameHeader,
        meta: { sortKey: 'name' },
        cell: (info) => (renderName ? renderName(info.row.original) : <strong>{info.getValue()}</strong>),
      }),
      ...(
        [
          ['requests', 'Requests', formatCount],
          ['prompt', 'Prompt', formatTokens],
          ['completion', 'Completion', formatTokens],
        ] as const
      ).map(([key, header, format]) =>
        column.accessor(key, {
          header,
          meta: { className: 'num', sortKey: key, optional: true },
          cell: (info) => format(info.getValue()),
        }),
      ),
      column.accessor('total', {
        header: 'Total',
        meta: { className: 'num', sortKey: 'total', optional: measure === 'cost' },
        cell: (info) =>
          measure === 'cost' ? (
            <span title={formatCount(info.getValue())}>{formatTokens(info.getValue())}</span>
          ) : (
            <strong title={formatCount(info.getValue())}>{formatTokens(info.getValue())}</strong>
          ),
      }),
      column.accessor('cost', {
        header: 'Cost',
        meta: { className: 'num', sortKey: 'cost', optional: measure !== 'cost' },
        cell: (info) => (
          <CostCell
            cost={info.getValue()}
            unpriced={info.row.original.unpriced}
            requests={info.row.original.requests}
            model={linkModels ? info.row.original.name : undefined}
            admin={admin}
            strong={measure === 'cost'}
          />
        ),
      }),
    ];
    if (projectionHeader) {
      list.push(
        column.accessor('projected', {
          header: projectionHeader,
          meta: { className: 'num', sortKey: 'projected', optional: true },
          cell: (info) => {
            const value = info.getValue();
            return value === null || value === undefined ? (
              <span className="muted">—</span>
            ) : (
              `~${formatMeasure(measure, value)}`
            );
          },
        }),
      );
    }
    list.push(
      column.display({
        id: 'share',
        header: 'Share',
        meta: { optional: true },
        cell: (info) => (
          <div className="row" style={{ flexWrap: 'nowrap' }}>
            <div className="bar-track" style={{ flex: 1 }}>
              <div className="bar-fill" style={{ width: `${(info.row.original[figure] / max) * 100}%` }} />
            </div>
            <span className="small muted share-value">{info.row.original.share}%</span>
          </div>
        ),
      }),
    );
    return list;
  }, [nameHeader, renderName, projectionHeader, max, measure, figure, admin, linkModels]);
  return (
    <DataTable
      data={sorted}
      columns={columns}
      caption={caption}
      sort={sort.key}
      direction={sort.direction}
      onSort={(key) =>
        setSort((previous) => {
          const current = previous ?? sort;
          const next = key as BreakdownSort;
          if (current.key === next) {
            return { key: next, direction: current.direction === 'ascending' ? 'descending' : 'ascending' };
          }
          return { key: next, direction: ASCENDING_FIRST.includes(next) ? 'ascending' : 'descending' };
        })
      }
      rowProps={rowProps as never}
    />
  );
}
