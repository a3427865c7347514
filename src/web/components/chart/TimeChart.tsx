import { Table2 } from 'lucide-react';
import { type ReactNode, useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { bucketBounds, longLabel } from './time.ts';

interface Hover {
  index: number;
  left: number;
  top: number;
  /** Left of the cursor (near the right edge). */
  flip: boolean;
}

export interface ChartSeries {
  id: string;
  label: string;
  color: string;
  /** One value per label (0 where the series has nothing). */
  values: number[];
  /** Drawn faded: outside the drill-in selection. */
  dimmed?: boolean;
}

/**
 * A stacked bar chart over UTC buckets, drawn by uPlot on a canvas: y axis and tooltip through the
 * caller's formatter (tokens or dollars draw the same way), light gridlines, a crosshair with a
 * tooltip listing every series of the bucket (value and share), and a table view of the same numbers
 * for keyboard and screen reader users. `series` lists the bottom of the stack first.
 */
export function TimeChart({
  title,
  titleId,
  labels,
  series,
  format,
  formatExact = format,
  height = 280,
  testId = 'time-chart',
  actions,
  legend,
}: {
  title: string;
  titleId: string;
  labels: string[];
  series: ChartSeries[];
  format: (value: number) => string;
  formatExact?: (value: number) => string;
  height?: number;
  testId?: string;
  actions?: ReactNode;
  legend?: ReactNode;
}) {
  const [tableView, setTableView] = useState(false);
  const [hover, setHover] = useState<Hover | null>(null);
  const host = useRef<HTMLDivElement>(null);
  const theme = useThemeVersion();
  const totals = useMemo(
    () => labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0)),
    [labels, series],
  );

  // biome-ignore lint/correctness/useExhaustiveDependencies: the theme re-reads the CSS colours the canvas draws with
  useEffect(() => {
    const element = host.current;
    if (!element || tableView) return;
    const plot = createPlot(element, { labels, series, format, height, onHover: setHover });
    const observer = new ResizeObserver(() => {
      const width = element.clientWidth;
      if (width > 0 && width !== plot.width) plot.setSize({ width, height });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.destroy();
      setHover(null);
    };
  }, [labels, series, format, height, tableView, theme]);

  const hovered = hover ? labels[hover.index] : undefined;
  const hoveredTotal = hover ? (totals[hover.index] ?? 0) : 0;
  return (
    <section className="card chart-card" aria-labelledby={titleId} data-testid={testId}>
      <div className="card-head chart-head">
        <h2 id={titleId}>{title}</h2>
        <div className="row chart-actions">
          {actions}
          <button
            type="button"
            className="btn btn-sm btn-ghost"
            aria-pressed={tableView}
            onClick={() => setTableView((on) => !on)}
          >
            <Table2 size={14} aria-hidden="true" />
            {tableView ? 'Chart' : 'Table'}
          </button>
        </div>
      </div>
      {tableView ? (
        <ChartTable labels={labels} series={series} totals={totals} format={formatExact} title={title} />
      ) : (
        <div
          className="chart-host"
          ref={host}
          role="img"
          aria-label={`${title}: ${series.length} series over ${labels.length} buckets; use the Table button for the numbers`}
          data-stack={series.map((s) => s.id).join(' ')}
          data-dimmed={series
            .filter((s) => s.dimmed)
            .map((s) => s.id)
            .join(' ')}
          style={{ height }}
        >
          {hover && hovered !== undefined ? (
            <div
              className="chart-tooltip"
              data-testid="chart-tooltip"
              style={{
                left: hover.left,
                top: hover.top,
                transform: hover.flip ? 'translateX(-100%)' : undefined,
              }}
              role="presentation"
            >
              <div className="chart-tooltip-title">{longLabel(hovered)}</div>
              <table>
                <tbody>
                  {[...series].reverse().map((s) => {
                    const value = s.values[hover.index] ?? 0;
                    return (
                      <tr key={s.id} className={s.dimmed ? 'dimmed' : undefined}>
                        <td className="tt-cell">
                          <span className="swatch" style={{ background: s.color }} />
                        </td>
                        <td className="tt-cell chart-tooltip-label">{s.label}</td>
                        <td className="tt-cell num">{formatExact(value)}</td>
                        <td className="tt-cell num muted">{shareOf(value, hoveredTotal)}</td>
                      </tr>
                    );
                  })}
                </tbody>
                <tfoot>
                  <tr>
                    <td className="tt-cell tt-total" />
                    <td className="tt-cell tt-total">Total</td>
                    <td className="tt-cell tt-total num">{formatExact(hoveredTotal)}</td>
                    <td className="tt-cell tt-total" />
                  </tr>
                </tfoot>
              </table>
            </div>
          ) : null}
        </div>
      )}
      {legend}
    </section>
  );
}

function shareOf(value: number, total: number): string {
  if (total <= 0) return '';
  const share = (value / total) * 100;
  return share > 0 && share < 1 ? '<1%' : `${Math.round(share)}%`;
}

function ChartTable({
  labels,
  series,
  totals,
  format,
  title,
}: {
  labels: string[];
  series: ChartSeries[];
  totals: number[];
  format: (value: number) => string;
  title: string;
}) {
  return (
    <div className="table-wrap chart-table" data-testid="chart-table">
      <table className="table">
        <caption className="sr-only">{title}, per bucket (UTC)</caption>
        <thead>
          <tr>
            <th scope="col">Bucket (UTC)</th>
            {[...series].reverse().map((s) => (
              <th key={s.id} scope="col" className="num">
                {s.label}
              </th>
            ))}
            <th scope="col" className="num">
              Total
            </th>
          </tr>
        </thead>
        <tbody>
          {labels.map((label, i) => (
            <tr key={label}>
              <th scope="row">{longLabel(label)}</th>
              {[...series].reverse().map((s) => (
                <td key={s.id} className="num">
                  {format(s.values[i] ?? 0)}
                </td>
              ))}
              <td className="num">{format(totals[i] ?? 0)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Bumps when the theme changes (the data-theme attribute or the system scheme). */
function useThemeVersion(): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const bump = () => setVersion((v) => v + 1);
    const observer = new MutationObserver(bump);
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    const media = window.matchMedia('(prefers-color-scheme: dark)');
    media.addEventListener('change', bump);
    return () => {
      observer.disconnect();
      media.removeEventListener('change', bump);
    };
  }, []);
  return version;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Hex colour with an alpha channel, for faded series. */
function faded(color: string): string {
  return /^#[0-9a-f]{6}$/i.test(color) ? `${color}40` : color;
}

const UTC = (seconds: number) => uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC');

function createPlot(
  element: HTMLElement,
  {
    labels,
    series,
    format,
    height,
    onHover,
  }: {
    labels: string[];
    series: ChartSeries[];
    format: (value: number) => string;
    height: number;
    onHover: (hover: Hover | null) => void;
  },
): uPlot {
  const bounds = labels.map(bucketBounds);
  // Bars sit in the middle of their bucket, so a day's bar lies between its midnight ticks.
  const xs = bounds.map(([start, end]) => (start + end) / 2 / 1000);
  const firstBucket = bounds[0];
  const lastBucket = bounds[bounds.length - 1];
  const xMin = firstBucket ? firstBucket[0] / 1000 : 0;
  const xMax = lastBucket ? lastBucket[1] / 1000 : 1;
  // Stacked: series i is drawn from 0 to the sum of series 0..i, largest sums first, so each bar
  // covers the one below it only where it adds.
  const cumulative: number[][] = [];
  series.forEach((s, index) => {
    const below = cumulative[index - 1];
    cumulative.push(labels.map((_, i) => (below?.[i] ?? 0) + (s.values[i] ?? 0)));
  });
  const peak = Math.max(0, ...(cumulative[cumulative.length - 1] ?? [0]));
  const text = cssVar('--muted', '#6b7384');
  const grid = cssVar('--border', '#e5e7eb');
  const bars = uPlot.paths.bars?.({ size: [0.72, 48], align: 0, gap: 1 });
  const order = series.map((_, i) => i).reverse();
  const options: uPlot.Options = {
    width: element.clientWidth || 600,
    height,
    tzDate: UTC,
    legend: { show: false },
    cursor: {
      y: false,
      points: { show: false },
      drag: { x: false, y: false, setScale: false },
    },
    scales: {
      x: { time: true, range: () => [xMin, xMax] },
      y: { range: () => [0, peak > 0 ? niceCeiling(peak * 1.08) : 1] },
    },
    axes: [
      {
        stroke: text,
        grid: { show: false },
        ticks: { stroke: grid, size: 4 },
        space: 64,
        font: '12px system-ui, sans-serif',
        values: (_u, splits, _axis, _space, increment) => splits.map((tick) => timeTick(tick, increment)),
      },
      {
        stroke: text,
        grid: { stroke: grid, width: 1 },
        ticks: { show: false },
        size: 56,
        space: 36,
        font: '12px system-ui, sans-serif',
        values: (_u, splits) => splits.map((value) => format(value)),
      },
    ],
    series: [
      {},
      ...order.map((index) => {
        const s = series[index];
        const color = s?.dimmed ? faded(s.color) : (s?.color ?? '#888');
        return {
          label: s?.label,
          stroke: color,
          fill: color,
          width: 0,
          paths: bars,
          points: { show: false },
        };
      }),
    ],
    hooks: {
      setCursor: [
        (u) => {
          const index = u.cursor.idx;
          const left = u.cursor.left ?? -1;
          if (index === null || index === undefined || left < 0) {
            onHover(null);
            return;
          }
          const over = u.over;
          const plotLeft = over.offsetLeft;
          const plotWidth = over.clientWidth;
          // Keep the tooltip inside the chart: right of the cursor, or left of it near the edge.
          const flip = left > plotWidth * 0.55;
          onHover({ index, left: left + plotLeft + (flip ? -14 : 14), top: over.offsetTop + 8, flip });
        },
      ],
    },
  };
  const data: uPlot.AlignedData = [xs, ...order.map((index) => cumulative[index] ?? [])];
  return new uPlot(options, data, element);
}

const DAY_SECONDS = 86_400;

/** UTC tick labels that fit the tick spacing: `14:00` (and the date at midnight), `Nov 3`, `Nov 2026`. */
function timeTick(seconds: number, increment: number): string {
  const date = new Date(seconds * 1000);
  const day = date.toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
  if (increment < DAY_SECONDS) {
    const hour = date.toISOString().slice(11, 16);
    return hour === '00:00' ? day : hour;
  }
  if (increment < 28 * DAY_SECONDS) return day;
  return date.toLocaleDateString('en-US', { month: 'short', year: 'numeric', timeZone: 'UTC' });
}

/** 1, 2 or 5 times a power of ten, at or above `value`: round tick values. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}
