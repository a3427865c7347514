import type { UsageBucket as SourceBucket, SourcesResponse } from '../../api.ts';
import { assignColors, OTHER_COLOR } from '../../components/chart/colors.ts';
import { type Measure, sumUsd } from '../../format.ts';

/**
 * Turns a sources payload (asked with `top`, so the server already folded the small series into
 * `other: true` buckets) into chart series and table rows that share one identity scheme, so a table
 * row, a legend entry and a ribbon segment select the same thing:
 * - an API key: its id;
 * - Web UI / Legacy: `web` / `legacy`, or per user in the admin view (`web:<user_id>`);
 * - a whole source class (ribbon): `apikey`, `web`, `legacy` selects every series of that class.
 */

/** Series the chart draws apart; the server folds the rest (the `top` query parameter). */
export const TOP_N = 7;
export const OTHER_ID = '__other__';
export const SOURCE_CLASSES = ['apikey', 'web', 'legacy'] as const;

export interface Series {
  id: string;
  source: string;
  label: string;
  color: string;
  total: number;
  /** Tokens per chart label. */
  values: number[];
}

export type RowKind = 'apikey' | 'web' | 'legacy';

export interface SourceRow {
  kind: RowKind;
  id: string;
  name: string;
  userId: string;
  userName: string;
  prefix: string;
  tokens: number;
  requests: number;
  /** USD of the priced requests; `unpriced` requests have no known cost. */
  cost: number;
  unpriced: number;
  lastUsed: string;
  revoked: boolean;
  /** Tokens per bucket of the window (the response's `bucket_labels`). */
  sparkline: number[];
}

export type SortKey = 'tokens' | 'cost' | 'requests' | 'last_used' | 'name' | 'user';
export const SORT_KEYS: SortKey[] = ['tokens', 'cost', 'requests', 'last_used', 'name', 'user'];
export type SortDirection = 'ascending' | 'descending';
/** Names read A to Z first, amounts largest first. */
export const DEFAULT_DIRECTION: Record<SortKey, SortDirection> = {
  tokens: 'descending',
  cost: 'descending',
  requests: 'descending',
  last_used: 'descending',
  name: 'ascending',
  user: 'ascending',
};

export function sourceLabel(source: string): string {
  if (source === 'web') return 'Web UI';
  if (source === 'legacy') return 'Legacy';
  if (source === 'apikey') return 'API keys';
  return source;
}

/** The legacy keys' pseudo-user is not a person: say what it is. */
export const LEGACY_USER_LABEL = 'Shared legacy key';

export function isSourceClass(id: string | null): id is RowKind {
  return id === 'apikey' || id === 'web' || id === 'legacy';
}

export function identityOf(bucket: SourceBucket, admin: boolean): string {
  if (bucket.other) return OTHER_ID;
  if (bucket.source === 'apikey') return bucket.api_key_id || 'apikey';
  if (admin && bucket.user_id) return `${bucket.source ?? ''}:${bucket.user_id}`;
  return bucket.source || 'unknown';
}

function labelOfBucket(bucket: SourceBucket, admin: boolean): string {
  if (bucket.source === 'apikey') return bucket.api_key_name || bucket.api_key_id || 'API key';
  const base = sourceLabel(bucket.source ?? '');
  if (!admin) return base;
  if (bucket.source === 'legacy') return base;
  return bucket.user_name ? `${base} · ${bucket.user_name}` : base;
}

/** Whether a bucket belongs to the selection (a series id or a whole source class). */
export function bucketMatches(selected: string | null, bucket: SourceBucket, admin: boolean): boolean {
  if (!selected) return true;
  if (isSourceClass(selected)) return bucket.source === selected;
  return !bucket.other && identityOf(bucket, admin) === selected;
}

export function rowMatches(selected: string | null, row: SourceRow): boolean {
  if (!selected) return true;
  return selected === row.id || selected === row.kind;
}

/** Whether `id` is one of the TOP_N largest unfolded series of the answer. */
export function isTopSeries(data: SourcesResponse, admin: boolean, id: string): boolean {
  const totals = new Map<string, number>();
  for (const bucket of data.buckets) {
    if (bucket.other) continue;
    const series = identityOf(bucket, admin);
    totals.set(series, (totals.get(series) ?? 0) + bucket.total_tokens);
  }
  const top = [...totals.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, TOP_N);
  return top.some(([series]) => series === id);
}

export interface ChartModel {
  /** Bottom of the stack first: the selection's series, then the rest, largest first. */
  series: Series[];
  labels: string[];
  /** Series outside the selection (drawn faded). */
  dimmed: Set<string>;
}

/**
 * Chart series over `labels` (the full axis, gaps filled): one per kept series, coloured from its id,
 * and "Other" for the folded buckets, split by source class while a class is selected so its part
 * of Other stays lit.
 */
/** The figure a bucket adds to the chart: its tokens, or its cost in USD. */
export function measureOf(bucket: SourceBucket, measure: Measure): number {
  return measure === 'cost' ? bucket.cost : bucket.total_tokens;
}

/** Adds in the measure's arithmetic: USD through integer nano-USD, so sums match the server's. */
export function addMeasure(a: number, b: number, measure: Measure): number {
  return measure === 'cost' ? sumUsd([a, b]) : a + b;
}

export function buildChart(
  data: SourcesResponse,
  admin: boolean,
  labels: string[],
  selected: string | null,
  measure: Measure = 'tokens',
): ChartModel {
  const slot = new Map(labels.map((label, index) => [label, index]));
  const byId = new Map<string, Series>();
  const otherLabel = `Other (${data.other_series ?? 0})`;
  for (const bucket of data.buckets) {
    let id = identityOf(bucket, admin);
    let label = id === OTHER_ID ? otherLabel : labelOfBucket(bucket, admin);
    if (id === OTHER_ID && isSourceClass(selected) && bucket.source === selected) {
      id = `${OTHER_ID}:${selected}`;
      label = `Other ${sourceLabel(selected)}`;
    }
    let series = byId.get(id);
    if (!series) {
      series = {
        id,
        source: id.startsWith(OTHER_ID) ? 'other' : (bucket.source ?? ''),
        label,
        color: OTHER_COLOR,
        total: 0,
        values: new Array<number>(labels.length).fill(0),
      };
      byId.set(id, series);
    }
    const figure = measureOf(bucket, measure);
    series.total = addMeasure(series.total, figure, measure);
    const index = slot.get(bucket.bucket);
    if (index !== undefined) series.values[index] = addMeasure(series.values[index] ?? 0, figure, measure);
  }
  const byTotal = (a: Series, b: Series) => b.total - a.total || a.id.localeCompare(b.id);
  const named = [...byId.values()].filter((s) => !s.id.startsWith(OTHER_ID)).sort(byTotal);
  const colors = assignColors(named.map((s) => s.id));
  for (const s of named) s.color = colors.get(s.id) ?? OTHER_COLOR;
  const others = [...byId.values()].filter((s) => s.id.startsWith(OTHER_ID)).sort(byTotal);
  const lit = (s: Series) =>
    !selected ||
    s.id === selected ||
    s.id === `${OTHER_ID}:${selected}` ||
    (isSourceClass(selected) && s.source === selected);
  const ordered = [...named, ...others];
  const series = [...ordered.filter(lit), ...ordered.filter((s) => !lit(s))];
  return { series, labels, dimmed: new Set(series.filter((s) => !lit(s)).map((s) => s.id)) };
}

export function buildRows(data: SourcesResponse, admin: boolean): SourceRow[] {
  const rows: SourceRow[] = data.totals.by_key.map((key) => ({
    kind: 'apikey',
    id: key.api_key_id,
    name: key.api_key_name || key.api_key_id,
    userId: key.user_id,
    userName: key.user_name,
    prefix: key.key_prefix ?? '',
    tokens: key.tokens,
    requests: key.requests,
    cost: key.cost,
    unpriced: key.unpriced_requests,
    lastUsed: key.last_used,
    revoked: key.revoked === true,
    sparkline: key.sparkline ?? [],
  }));
  const perUser = data.totals.by_user_source ?? [];
  if (admin && perUser.length > 0) {
    for (const entry of perUser) {
      if (entry.source !== 'web' && entry.source !== 'legacy') continue;
      rows.push({
        kind: entry.source,
        id: `${entry.source}:${entry.user_id}`,
        name: sourceLabel(entry.source),
        userId: entry.user_id,
        userName: entry.source === 'legacy' ? LEGACY_USER_LABEL : entry.user_name,
        prefix: '',
        tokens: entry.tokens,
        requests: entry.requests,
        cost: entry.cost,
        unpriced: entry.unpriced_requests,
        lastUsed: entry.last_used ?? '',
        revoked: false,
        sparkline: entry.sparkline ?? [],
      });
    }
  } else {
    for (const source of ['web', 'legacy'] as const) {
      const entry = data.totals.by_source[source];
      if (!entry || (entry.tokens === 0 && entry.requests === 0)) continue;
      rows.push({
        kind: source,
        id: source,
        name: sourceLabel(source),
        userId: '',
        userName: '',
        prefix: '',
        tokens: entry.tokens,
        requests: entry.requests,
        cost: entry.cost,
        unpriced: entry.unpriced_requests,
        lastUsed: data.source_last_used?.[source] ?? '',
        revoked: false,
        sparkline: sparklineOfSource(data, source),
      });
    }
  }
  return rows;
}

/** The caller's own Web UI / Legacy line: every bucket of that source, kept or folded. */
function sparklineOfSource(data: SourcesResponse, source: string): number[] {
  const labels = data.bucket_labels ?? [];
  const slot = new Map(labels.map((label, index) => [label, index]));
  const line = new Array<number>(labels.length).fill(0);
  for (const bucket of data.buckets) {
    if (bucket.source !== source) continue;
    const index = slot.get(bucket.bucket);
    if (index !== undefined) line[index] = (line[index] ?? 0) + bucket.total_tokens;
  }
  return line;
}

export function filterRows(rows: SourceRow[], search: string): SourceRow[] {
  const needle = search.trim().toLowerCase();
  if (!needle) return rows;
  return rows.filter((row) =>
    [row.name, row.prefix, row.userName, row.userId].some((value) => value.toLowerCase().includes(needle)),
  );
}

function lastUsedMs(row: SourceRow): number {
  const ms = Date.parse(row.lastUsed);
  return Number.isFinite(ms) && ms > 0 && !row.lastUsed.startsWith('0001-') ? ms : Number.NEGATIVE_INFINITY;
}

export function sortRows(
  rows: SourceRow[],
  sort: SortKey,
  direction: SortDirection = DEFAULT_DIRECTION[sort],
): SourceRow[] {
  const byName = (a: SourceRow, b: SourceRow) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
  const compare: (a: SourceRow, b: SourceRow) => number = {
    tokens: (a: SourceRow, b: SourceRow) => a.tokens - b.tokens,
    cost: (a: SourceRow, b: SourceRow) => a.cost - b.cost,
    requests: (a: SourceRow, b: SourceRow) => a.requests - b.requests,
    last_used: (a: SourceRow, b: SourceRow) => {
      const [x, y] = [lastUsedMs(a), lastUsedMs(b)];
      return x === y ? 0 : x < y ? -1 : 1;
    },
    name: () => 0,
    user: (a: SourceRow, b: SourceRow) => (a.userName || a.userId).localeCompare(b.userName || b.userId),
  }[sort];
  const sign = direction === 'ascending' ? 1 : -1;
  // Ties read by name A to Z whichever way the column goes.
  return [...rows].sort(
    (a, b) => sign * (compare(a, b) || (sort === 'name' ? byName(a, b) : 0)) || byName(a, b),
  );
}

/** Human name of a selection, for the drill-in chip. */
export function selectionLabel(selected: string, rows: SourceRow[], series: Series[]): string {
  if (isSourceClass(selected)) return sourceLabel(selected);
  const row = rows.find((r) => r.id === selected);
  if (row) return row.kind === 'apikey' ? row.name : `${row.name}${row.userName ? ` · ${row.userName}` : ''}`;
  const match = series.find((s) => s.id === selected);
  return match?.label ?? selected;
}
