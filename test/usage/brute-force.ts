import { type BucketUnit, bucketLabelOf } from '../../src/server/db/dialect.ts';
import type { UsageRow } from '../../src/server/usage/ingest.repository.ts';

/**
 * The usage endpoints computed the slow, obvious way: over raw rows, in JavaScript, written
 * independently of the server's code. Semantics (the ones shared/usage.ts documents):
 * - periods: day = now − 24 h (hour buckets), week = now − 7 d and month (also any unknown value)
 *   = now − 30 d (day buckets), all = unbounded (month buckets); from/to pick hour buckets up to
 *   2 days, day buckets up to 92 days, month buckets beyond (or `granularity`);
 * - whole buckets: the start is floored to its bucket's start, `to` (exclusive) ceiled to its
 *   bucket's end, and a row counts when start <= created_at < end;
 * - orderings: buckets by their identity in code-unit order; by_key and by_user_source by tokens
 *   descending, ties by identity.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface BruteWindow {
  start: number | null;
  end: number | null;
  unit: BucketUnit;
}

function floorTo(ms: number, unit: BucketUnit): number {
  const d = new Date(ms);
  if (unit === 'hour') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
  if (unit === 'day') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function ceilTo(ms: number, unit: BucketUnit): number {
  const floor = floorTo(ms, unit);
  if (floor === ms) return ms;
  const d = new Date(floor);
  if (unit === 'hour') return floor + HOUR;
  if (unit === 'day') return floor + DAY;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export function bruteWindow(
  query: { period?: string; from?: string; to?: string; granularity?: BucketUnit },
  now: number,
): BruteWindow {
  if (query.from || query.to) {
    const from = query.from ? Date.parse(query.from) : null;
    const to = query.to ? Date.parse(query.to) : null;
    const length = from === null ? Number.POSITIVE_INFINITY : (to ?? now) - from;
    const unit = query.granularity ?? (length <= 2 * DAY ? 'hour' : length <= 92 * DAY ? 'day' : 'month');
    return {
      start: from === null ? null : floorTo(from, unit),
      end: to === null ? null : ceilTo(to, unit),
      unit,
    };
  }
  const period = ['day', 'week', 'month', 'all'].includes(query.period ?? '') ? query.period : 'month';
  const length = { day: DAY, week: 7 * DAY, month: 30 * DAY, all: null }[period as string] ?? null;
  const unit: BucketUnit =
    query.granularity ?? (period === 'day' ? 'hour' : period === 'all' ? 'month' : 'day');
  return { start: length === null ? null : floorTo(now - length, unit), end: null, unit };
}

export function inWindow(row: UsageRow, window: BruteWindow): boolean {
  return (
    (window.start === null || row.created_at >= window.start) &&
    (window.end === null || row.created_at < window.end)
  );
}

export function windowJson(window: BruteWindow) {
  return {
    from: window.start === null ? null : new Date(window.start).toISOString(),
    to: window.end === null ? null : new Date(window.end).toISOString(),
    granularity: window.unit,
  };
}

const cmp = (a: string[], b: string[]) => {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return (a[i] ?? '') < (b[i] ?? '') ? -1 : 1;
  }
  return 0;
};

interface Agg {
  id: string[];
  prompt: number;
  completion: number;
  total: number;
  count: number;
  last: number;
  costNanos: number;
  unpriced: number;
}

function aggregate(rows: UsageRow[], identity: (row: UsageRow) => string[]): Agg[] {
  const map = new Map<string, Agg>();
  for (const row of rows) {
    const id = identity(row);
    const key = id.join('\u0000');
    let agg = map.get(key);
    if (!agg) {
      agg = { id, prompt: 0, completion: 0, total: 0, count: 0, last: 0, costNanos: 0, unpriced: 0 };
      map.set(key, agg);
    }
    agg.prompt += Number(row.prompt_tokens);
    agg.completion += Number(row.completion_tokens);
    agg.total += Number(row.total_tokens);
    agg.count += 1;
    agg.last = Math.max(agg.last, row.created_at);
    agg.costNanos += Number(row.cost_nanos ?? 0);
    agg.unpriced += (row.price_source ?? 'none') === 'none' ? 1 : 0;
  }
  return [...map.values()];
}

function buckets(rows: UsageRow[], unit: BucketUnit, fields: (keyof UsageRow)[]) {
  return aggregate(rows, (row) => [
    bucketLabelOf(row.created_at, unit),
    ...fields.map((f) => String(row[f] ?? '')),
  ])
    .sort((a, b) => cmp(a.id, b.id))
    .map((agg) => {
      const out: Record<string, unknown> = { bucket: agg.id[0] };
      fields.forEach((field, i) => {
        if (agg.id[i + 1]) out[field] = agg.id[i + 1];
      });
      return {
        ...out,
        prompt_tokens: agg.prompt,
        completion_tokens: agg.completion,
        total_tokens: agg.total,
        request_count: agg.count,
        cost: agg.costNanos / 1e9,
        unpriced_requests: agg.unpriced,
        costNanos: agg.costNanos,
      };
    });
}

function sumOf(
  list: {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    request_count: number;
    costNanos: number;
    unpriced_requests: number;
  }[],
) {
  return {
    prompt_tokens: list.reduce((s, b) => s + b.prompt_tokens, 0),
    completion_tokens: list.reduce((s, b) => s + b.completion_tokens, 0),
    total_tokens: list.reduce((s, b) => s + b.total_tokens, 0),
    request_count: list.reduce((s, b) => s + b.request_count, 0),
    cost: list.reduce((s, b) => s + b.costNanos, 0) / 1e9,
    unpriced_requests: list.reduce((s, b) => s + b.unpriced_requests, 0),
  };
}

/** Buckets as the API shows them (the exact nano sum is kept aside for the totals). */
function shown<T extends { costNanos: number }>(list: T[]): Omit<T, 'costNanos'>[] {
  return list.map(({ costNanos: _, ...rest }) => rest);
}

const costOf = (agg: Agg) => ({ cost: agg.costNanos / 1e9, unpriced_requests: agg.unpriced });

export function bruteUsage(
  rows: UsageRow[],
  window: BruteWindow,
  filter: { userId?: string; admin: boolean },
) {
  const selected = rows.filter(
    (row) => inWindow(row, window) && (filter.userId === undefined || row.user_id === filter.userId),
  );
  const usage = buckets(selected, window.unit, filter.admin ? ['model', 'user_id', 'user_name'] : ['model']);
  return { usage: shown(usage), totals: sumOf(usage), window: windowJson(window) };
}

export function bruteKeyUsage(
  rows: UsageRow[],
  window: BruteWindow,
  key: { id: string; name: string; prefix: string },
) {
  const selected = rows.filter((row) => inWindow(row, window) && row.api_key_id === key.id);
  const usage = buckets(selected, window.unit, ['model']);
  return {
    object: 'usage',
    api_key: key,
    usage: shown(usage),
    totals: sumOf(usage),
    window: windowJson(window),
  };
}

export function bruteSources(
  rows: UsageRow[],
  window: BruteWindow,
  filter: { userId?: string; apiKeyId?: string; admin: boolean },
  keys: Map<string, { prefix: string; revoked: boolean }>,
) {
  const selected = rows.filter(
    (row) =>
      inWindow(row, window) &&
      (filter.userId === undefined || row.user_id === filter.userId) &&
      (filter.apiKeyId === undefined || (row.api_key_id ?? '') === filter.apiKeyId) &&
      (filter.admin || row.source !== 'legacy'),
  );
  const bySource: Record<string, { tokens: number; requests: number }> = {};
  for (const agg of aggregate(selected, (row) => [row.source ?? ''])) {
    bySource[agg.id[0] ?? ''] = { tokens: agg.total, requests: agg.count, ...costOf(agg) };
  }
  const keyRows = selected.filter((row) => (row.api_key_id ?? '') !== '');
  const byKey = aggregate(keyRows, (row) => [
    row.api_key_id ?? '',
    row.api_key_name ?? '',
    row.user_id,
    row.user_name ?? '',
  ])
    .sort((a, b) => b.total - a.total || cmp(a.id, b.id))
    .slice(0, 200)
    .map((agg) => ({
      api_key_id: agg.id[0],
      api_key_name: agg.id[1],
      user_id: agg.id[2],
      user_name: agg.id[3],
      tokens: agg.total,
      requests: agg.count,
      ...costOf(agg),
      last_used: new Date(agg.last).toISOString(),
      key_prefix: keys.get(agg.id[0] ?? '')?.prefix ?? '',
      revoked: keys.get(agg.id[0] ?? '')?.revoked ?? true,
    }));
  const totals: Record<string, unknown> = {
    by_source: bySource,
    by_key: byKey,
    grand_total: {
      tokens: selected.reduce((s, row) => s + Number(row.total_tokens), 0),
      requests: selected.length,
      cost: selected.reduce((s, row) => s + Number(row.cost_nanos ?? 0), 0) / 1e9,
      unpriced_requests: selected.filter((row) => (row.price_source ?? 'none') === 'none').length,
    },
  };
  if (filter.admin) {
    const byUserSource = aggregate(
      selected.filter((row) => row.source !== 'apikey'),
      (row) => [row.source ?? '', row.user_id, row.user_name ?? ''],
    )
      .sort((a, b) => b.total - a.total || cmp(a.id, b.id))
      .map((agg) => ({
        source: agg.id[0],
        user_id: agg.id[1],
        user_name: agg.id[2],
        tokens: agg.total,
        requests: agg.count,
        ...costOf(agg),
      }));
    if (byUserSource.length > 0) totals.by_user_source = byUserSource;
  }
  return {
    buckets: shown(
      buckets(
        selected,
        window.unit,
        filter.admin
          ? ['source', 'api_key_id', 'api_key_name', 'user_id', 'user_name']
          : ['source', 'api_key_id', 'api_key_name'],
      ),
    ),
    totals,
    truncated: filter.admin && new Set(keyRows.map((row) => row.api_key_id)).size > 200,
    window: windowJson(window),
  };
}
