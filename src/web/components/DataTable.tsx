import { type ColumnDef, flexRender, getCoreRowModel, type Row, useReactTable } from '@tanstack/react-table';
import { Fragment, type ReactNode } from 'react';

/**
 * TanStack Table rendering for every list. Rows arrive already filtered and sorted by the caller (the
 * sort order lives in the URL), so the table only renders; `meta.className` styles a column's cells.
 */
export interface ColumnMeta {
  className?: string;
  /** The sort key this column's header selects (the page keeps the sort state). */
  sortKey?: string;
  /** Hidden on phones (max-width 640px) so the name and main figures fit without sideways scrolling. */
  optional?: boolean;
}

export type SortDirection = 'ascending' | 'descending';

function classOf(meta: ColumnMeta | undefined): string | undefined {
  const names = [meta?.className, meta?.optional ? 'optional' : undefined].filter(Boolean);
  return names.length > 0 ? names.join(' ') : undefined;
}

export function DataTable<T>({
  data,
  columns,
  caption,
  rowProps,
  renderDetails,
  sort,
  direction = 'descending',
  onSort,
}: {
  /** An optional full-width row under a row (e.g. an expanded key's details); null for none. */
  renderDetails?: (row: Row<T>) => ReactNode;
  sort?: string;
  /** The direction of `sort`; clicking its header again asks `onSort` for the same key (a toggle). */
  direction?: SortDirection;
  onSort?: (key: string) => void;
  data: T[];
  // biome-ignore lint/suspicious/noExplicitAny: TanStack column value types differ per column
  columns: ColumnDef<T, any>[];
  caption: string;
  rowProps?: (row: Row<T>) => React.HTMLAttributes<HTMLTableRowElement> & Record<string, unknown>;
}) {
  const table = useReactTable({ data, columns, getCoreRowModel: getCoreRowModel() });
  return (
    <div className="table-wrap">
      <table className="table">
        <caption className="sr-only">{caption}</caption>
        <thead>
          {table.getHeaderGroups().map((group) => (
            <tr key={group.id}>
              {group.headers.map((header) => {
                const meta = header.column.columnDef.meta as ColumnMeta | undefined;
                const content = header.isPlaceholder
                  ? null
                  : flexRender(header.column.columnDef.header, header.getContext());
                const sortKey = meta?.sortKey;
                return (
                  <th
                    key={header.id}
                    scope="col"
                    className={classOf(meta)}
                    aria-sort={sortKey && sortKey === sort ? direction : undefined}
                  >
                    {sortKey && onSort ? (
                      <button
                        type="button"
                        className={`th-sort${sortKey === sort ? ` active ${direction}` : ''}`}
                        onClick={() => onSort(sortKey)}
                      >
                        {content}
                      </button>
                    ) : (
                      content
                    )}
                  </th>
                );
              })}
            </tr>
          ))}
        </thead>
        <tbody>
          {table.getRowModel().rows.map((row) => {
            const details = renderDetails?.(row);
            return (
              <Fragment key={row.id}>
                <tr {...rowProps?.(row)}>
                  {row.getVisibleCells().map((cell) => (
                    <td
                      key={cell.id}
                      className={classOf(cell.column.columnDef.meta as ColumnMeta | undefined)}
                    >
                      {flexRender(cell.column.columnDef.cell, cell.getContext())}
                    </td>
                  ))}
                </tr>
                {details ? (
                  <tr className="details-row">
                    <td colSpan={row.getVisibleCells().length}>{details}</td>
                  </tr>
                ) : null}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
