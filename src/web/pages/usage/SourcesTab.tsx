import { Filter, X } from 'lucide-react';
import { useEffect, useMemo, useRef, useState } from 'react';
import type { UsageRange } from '../../api.ts';
import { OTHER_COLOR } from '../../components/chart/colors.ts';
import { TimeChart } from '../../components/chart/TimeChart.tsx';
import { Empty, ErrorState, Loading } from '../../components/States.tsx';
import { formatTick, formatTokens, formatUsd, type Measure, sumUsd } from '../../format.ts';
import { useUsageSources } from '../../hooks/useUsageSources.ts';
import { useQueryState } from '../../router.ts';
import { axisLabels, compareLabel, project, projectionHorizon } from './buckets.ts';
import { SourceMixRibbon } from './SourceMixRibbon.tsx';
import { SourcesTable } from './SourcesTable.tsx';
import { SummaryCards } from './SummaryCards.tsx';

/** Axis ticks in dollars: `$1.50`, `$0.02`, `$0`. */
const formatUsdTick = (value: number) => formatUsd(Math.round(value * 1e6) / 1e6);

import {
  addMeasure,
  bucketMatches,
  buildChart,
  buildRows,
  DEFAULT_DIRECTION,
  filterRows,
  isSourceClass,
  isTopSeries,
  measureOf,
  OTHER_ID,
  rowMatches,
  SORT_KEYS,
  type SortDirection,
  type SortKey,
  selectionLabel,
  sortRows,
  TOP_N,
} from './sources-model.ts';

/**
 * Usage by source: its own cards, one chart near the top, the source mix and the table. Selection
 * (`sel`), search (`q`) and sort (`sort`, `dir`) live in the URL, so they survive period changes,
 * refreshes and reloads; the data keeps showing while a new range loads. A selection (a row, a
 * legend entry or a ribbon segment) filters every figure of the tab; the chip is the way back.
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
  const selected = query.get('sel');
  // A selected series the top 7 does not hold is asked for unfolded (`keep`), so it can be drawn and
  // summed; selecting one of the top 7 needs no new request. An answer asked with keep=X holds X
  // among its 7 largest series only if X is in the real top 7, so this settles after one fetch.
  const [keptFor, setKeptFor] = useState<string | undefined>(undefined);
  const sources = useUsageSources(range, admin, userId, { top: TOP_N, keep: keptFor });
  useEffect(() => {
    const wanted =
      selected && !isSourceClass(selected) && !(sources.data && isTopSeries(sources.data, admin, selected))
        ? selected
        : undefined;
    if (wanted !== keptFor && !(wanted === undefined && sources.isPlaceholderData)) setKeptFor(wanted);
  }, [selected, sources.data, sources.isPlaceholderData, admin, keptFor]);
  const search = query.get('q') ?? '';
  const sortParam = query.get('sort') as SortKey | null;
  const defaultSort: SortKey = measure === 'cost' ? 'cost' : 'tokens';
  const sort: SortKey =
    sortParam && SORT_KEYS.includes(sortParam) && (admin || sortParam !== 'user') ? sortParam : defaultSort;
  const dirParam = query.get('dir');
  const direction: SortDirection =
    dirParam === 'ascending' || dirParam === 'descending' ? dirParam : DEFAULT_DIRECTION[sort];
  const chartRef = useRef<HTMLDivElement>(null);
  const scrollPending = useRef(false);
  const select = (id: string | null) => {
    scrollPending.current = id !== null;
    setQuery({ sel: id });
  };

  const data = sources.data;
  const labels = useMemo(
    () => (data ? axisLabels(range, data.bucket_labels ?? [], Date.now(), data.window) : []),
    [data, range],
  );
  const chart = useMemo(
    () => (data ? buildChart(data, admin, labels, selected, measure) : null),
    [data, admin, labels, selected, measure],
  );
  const allRows = useMemo(() => (data ? buildRows(data, admin) : []), [data, admin]);
  const rows = useMemo(
    () =>
      sortRows(
        filterRows(allRows, search).filter((row) => rowMatches(selected, row)),
        sort,
        direction,
      ),
    [allRows, search, sort, direction, selected],
  );
  // Memoised: a new array would redraw the canvas on every keystroke in the search box.
  const chartSeries = useMemo(
    () => (chart ? chart.series.map((s) => ({ ...s, dimmed: chart.dimmed.has(s.id) })) : []),
    [chart],
  );
  const colors = useMemo(() => {
    const map = new Map<string, string>();
    for (const s of chart?.series ?? []) if (!s.id.startsWith(OTHER_ID)) map.set(s.id, s.color);
    return map;
  }, [chart]);
  const figures = useMemo(() => {
    if (!data) return null;
    const matching = data.buckets.filter((bucket) => bucketMatches(selected, bucket, admin));
    const perLabel = new Map<string, number>();
    const tokensBySource: Record<string, number> = {};
    const totals = { requests: 0, prompt: 0, completion: 0, total: 0, cost: 0, unpriced: 0 };
    for (const b of matching) {
      totals.requests += b.request_count;
      totals.prompt += b.prompt_tokens;
      totals.completion += b.completion_tokens;
      totals.total += b.total_tokens;
      totals.cost = sumUsd([totals.cost, b.cost]);
      totals.unpriced += b.unpriced_requests;
      const figure = measureOf(b, measure);
      perLabel.set(b.bucket, addMeasure(perLabel.get(b.bucket) ?? 0, figure, measure));
      const source = b.source ?? '';
      tokensBySource[source] = addMeasure(tokensBySource[source] ?? 0, figure, measure);
    }
    // A selected key whose buckets are still on their way: its row's totals meanwhile.
    const row = matching.length === 0 && selected ? allRows.find((r) => r.id === selected) : undefined;
    if (row) {
      totals.requests = row.requests;
      totals.total = row.tokens;
      totals.cost = row.cost;
      totals.unpriced = row.unpriced;
    }
    const horizon = projectionHorizon(range);
    const ahead = horizon
      ? project(
          labels.map((label) => perLabel.get(label) ?? 0),
          horizon.buckets,
        )
      : null;
    return {
      totals,
      tokensBySource,
      projection: { label: horizon?.label ?? null, value: ahead ? ahead.reduce((s, v) => s + v, 0) : null },
    };
  }, [data, selected, admin, labels, range, allRows, measure]);

  // After a drill-in the chart must be on screen: the table may be far below it (the 10th row at
  // 1440x900), and the filtered table is shorter than the one clicked.
  useEffect(() => {
    if (!scrollPending.current || !selected) return;
    scrollPending.current = false;
    const element = chartRef.current;
    if (!element) return;
    const box = element.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) element.scrollIntoView({ block: 'start' });
  }, [selected]);

  if (sources.isPending) return <Loading label="Loading sources…" />;
  if (sources.isError) return <ErrorState error={sources.error} onRetry={() => sources.refetch()} />;
  if (!data || !chart || !figures) return null;
  const empty = data.totals.grand_total.tokens === 0 && data.totals.grand_total.requests === 0;
  if (empty) {
    return (
      <section className="card">
        <Empty title="No requests in this period.">
          Once requests come in, you'll see them broken down here.
        </Empty>
      </section>
    );
  }
  const keyCount = allRows.filter((row) => row.kind === 'apikey' && rowMatches(selected, row)).length;

  return (
    <div className="stack" data-testid="sources-tab" aria-busy={sources.isFetching}>
      {selected ? (
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
      <SummaryCards
        totals={figures.totals}
        // The previous period's totals are the whole tab's, so a drill-in shows no change.
        previous={selected ? undefined : data.previous}
        projection={figures.projection}
        compareLabel={compareLabel(range)}
        measure={measure}
      />
      <SourceMixRibbon
        tokensBySource={figures.tokensBySource}
        keyCount={keyCount}
        selected={selected}
        onSelect={select}
      />
      <div className="sources-body">
        <div className="sticky-chart" ref={chartRef}>
          <TimeChart
            title={measure === 'cost' ? 'Top sources by cost over time' : 'Top sources over time'}
            titleId="source-chart-title"
            testId="source-chart"
            labels={labels}
            series={chartSeries}
            format={measure === 'cost' ? formatUsdTick : formatTick}
            formatExact={measure === 'cost' ? formatUsd : formatTokens}
            height={240}
            legend={
              <ul className="legend ribbon-legend" aria-label="Series">
                {chart.series.map((s) => (
                  <li key={s.id}>
                    <button
                      type="button"
                      className="legend-item"
                      data-testid="series-legend"
                      data-series={s.id}
                      data-color={s.color}
                      aria-pressed={selected === s.id}
                      disabled={s.id.startsWith(OTHER_ID)}
                      style={{ opacity: chart.dimmed.has(s.id) ? 0.5 : 1 }}
                      onClick={() => select(selected === s.id ? null : s.id)}
                    >
                      <span className="swatch" style={{ background: s.color ?? OTHER_COLOR }} />
                      {s.label}
                    </button>
                  </li>
                ))}
              </ul>
            }
          />
        </div>
        <SourcesTable
          rows={rows}
          admin={admin}
          range={range}
          userId={userId}
          search={search}
          sort={sort}
          direction={direction}
          selected={selected}
          colors={colors}
          truncated={data.truncated}
          onSearch={(value) => setQuery({ q: value || null })}
          onSort={(key, dir) =>
            setQuery({
              sort: key === defaultSort ? null : key,
              dir: dir === DEFAULT_DIRECTION[key] ? null : dir,
            })
          }
          onSelect={select}
          measure={measure}
        />
      </div>
    </div>
  );
}
