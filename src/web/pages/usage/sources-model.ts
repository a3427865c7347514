import type { KeyTotal, UsageBucket as SourceBucket, SourcesResponse } from '../../api.ts';
import { type Measure, sumUsd } from '../../format.ts';

/**
 * Turns a sources payload into chart series and table rows that share one identity scheme, so a
 * table row, a legend entry and a ribbon segment select the same thing:
 * - an API key: its id;
 * - Web UI / Legacy: `web` / `legacy`, or per user in the admin view (`web:<user_id>`);
 * - a whole source class (ribbon): `apikey`, `web`, `legacy` selects every series of that class.
 */

export const TOP_N = 7;
export const SERIES_COLORS = [
  'var(--color-primary)',
  '#10b981',
  '#f59e0b',
  '#3b82f6',
  '#ef4444',
  '#a855f7',
  '#ec4899',
];
export const OTHER_COLOR = '#94a3b8';
export const OTHER_ID = '__other__';

export interface Series {
  id: string;
  source: string;
  label: string;
  color: string;
  total: number;
  /** For Other: the identities it stands for. */
  members: { id: string; source: string }[];
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
}

export type SortKey = 'tokens' | 'cost' | 'requests' | 'last_used' | 'name' | 'user';
export const SORT_KEYS: SortKey[] = ['tokens', 'cost', 'requests', 'last_used', 'name', 'user'];

export function sourceLabel(source: string): string {
  if (source === 'web') return 'Web UI';
  if (source === 'legacy') return 'Legacy';
  if (source === 'apikey') return 'API keys';
  return source;
}

export function identityOf(bucket: SourceBucket, admin: boolean): string {
  if (bucket.source === 'apikey') return bucket.api_key_id || 'apikey';
  if (admin && bucket.user_id) return `${bucket.source ?? ''}:${bucket.user_id}`;
  return bucket.source || 'unknown';
}

function labelOfBucket(bucket: SourceBucket, admin: boolean): string {
  if (bucket.source === 'apikey') return bucket.api_key_name || bucket.api_key_id || 'API key';
  const base = sourceLabel(bucket.source ?? '');
  return admin && bucket.user_name ? `${base} · ${bucket.user_name}` : base;
}

export function matchesSelection(selected: string | null, id: string, source: string): boolean {
  if (!selected) return true;
  return selected === id || selected === source;
}

export function seriesMatches(selected: string | null, series: Series): boolean {
  if (!selected || selected === series.id) return true;
  if (series.id === OTHER_ID) return series.members.some((m) => matchesSelection(selected, m.id, m.source));
  return matchesSelection(selected, series.id, series.source);
}

export interface ChartModel {
  series: Series[];
  labels: string[];
  /** values[label][seriesId] = tokens */
  values: Map<string, Map<string, number>>;
}

/** The figure a bucket adds to the chart: its tokens, or its cost in USD. */
function measureOf(bucket: SourceBucket, measure: Measure): number {
  return measure === 'cost' ? bucket.cost : bucket.total_tokens;
}

export function buildChart(data: SourcesResponse, admin: boolean, measure: Measure = 'tokens'): ChartModel {
  const totals = new Map<string, { source: string; label: string; total: number }>();
  for (const bucket of data.buckets) {
    const id = identityOf(bucket, admin);
    const entry = totals.get(id) ?? {
      source: bucket.source ?? '',
      label: labelOfBucket(bucket, admin),
      total: 0,
    };
    entry.total = sumUsdOrTokens(entry.total, measureOf(bucket, measure), measure);
    totals.set(id, entry);
  }
  const ranked = [...totals.entries()].sort((a, b) => b[1].total - a[1].total || a[0].localeCompare(b[0]));
  const top = ranked.slice(0, TOP_N);
  const rest = ranked.slice(TOP_N);
  const series: Series[] = top.map(([id, entry], index) => ({
    id,
    source: entry.source,
    label: entry.label,
    color: SERIES_COLORS[index % SERIES_COLORS.length] ?? OTHER_COLOR,
    total: entry.total,
    members: [{ id, source: entry.source }],
  }));
  if (rest.length > 0) {
    series.push({
      id: OTHER_ID,
      source: 'mixed',
      label: `Other (${rest.length})`,
      color: OTHER_COLOR,
      total: rest.reduce((sum, [, entry]) => sum + entry.total, 0),
      members: rest.map(([id, entry]) => ({ id, source: entry.source })),
    });
  }
  const topIds = new Set(top.map(([id]) => id));
  const values = new Map<string, Map<string, number>>();
  for (const bucket of data.buckets) {
    const id = identityOf(bucket, admin);
    const seriesId = topIds.has(id) ? id : OTHER_ID;
    const row = values.get(bucket.bucket) ?? new Map<string, number>();
    row.set(seriesId, sumUsdOrTokens(row.get(seriesId) ?? 0, measureOf(bucket, measure), measure));
    values.set(bucket.bucket, row);
  }
  return { series, labels: [...values.keys()].sort(), values };
}

export function buildRows(data: SourcesResponse, admin: boolean): SourceRow[] {
  const keys: KeyTotal[] = data.totals.by_key ?? [];
  const rows: SourceRow[] = keys.map((key) => ({
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
        userName: entry.user_name,
        prefix: '',
        tokens: entry.tokens,
        requests: entry.requests,
        cost: entry.cost,
        unpriced: entry.unpriced_requests,
        lastUsed: '',
        revoked: false,
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
        lastUsed: '',
        revoked: false,
      });
    }
  }
  return rows;
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

export function sortRows(rows: SourceRow[], sort: SortKey): SourceRow[] {
  const sorted = [...rows];
  const byName = (a: SourceRow, b: SourceRow) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
  switch (sort) {
    case 'tokens':
      return sorted.sort((a, b) => b.tokens - a.tokens || byName(a, b));
    case 'cost':
      return sorted.sort((a, b) => b.cost - a.cost || byName(a, b));
    case 'requests':
      return sorted.sort((a, b) => b.requests - a.requests || byName(a, b));
    case 'last_used':
      return sorted.sort((a, b) => lastUsedMs(b) - lastUsedMs(a) || byName(a, b));
    case 'name':
      return sorted.sort(byName);
    case 'user':
      return sorted.sort(
        (a, b) => (a.userName || a.userId).localeCompare(b.userName || b.userId) || byName(a, b),
      );
  }
}

/** Human name of a selection, for the drill-in chip. */
export function selectionLabel(selected: string, rows: SourceRow[], series: Series[]): string {
  if (selected === 'apikey' || selected === 'web' || selected === 'legacy') return sourceLabel(selected);
  const row = rows.find((r) => r.id === selected);
  if (row) return row.kind === 'apikey' ? row.name : `${row.name}${row.userName ? ` · ${row.userName}` : ''}`;
  const match = series.find((s) => s.id === selected);
  return match?.label ?? selected;
}

function sumUsdOrTokens(a: number, b: number, measure: Measure): number {
  return measure === 'cost' ? sumUsd([a, b]) : a + b;
}
