import type {
  KeyTotal,
  SourcesResponse,
  SourceTotals,
  TotalsEntry,
  UserSourceTotal,
} from '../../shared/usage.ts';
import { MAX_KEY_TOTALS } from '../../shared/usage.ts';
import type { Db } from '../db/connection.ts';
import {
  findApiKeyStates,
  getDailySourceFactsOfDays,
  getDayVersions,
  getSourceFacts,
  type SourceFact,
} from './usage.repository.ts';
import {
  addToGroup,
  type BucketField,
  byKey,
  byTokensThenKey,
  type Counts,
  costFields,
  type Group,
  toBuckets,
} from './usage-groups.ts';
import type { ResolvedWindow } from './usage-window.ts';

/** The Sources answers (reference 8.5): totals by source, key and user, and the admin's cached days. */

export const SELF_SOURCE_FIELDS: BucketField[] = ['source', 'api_key_id', 'api_key_name'];
export const ADMIN_SOURCE_FIELDS: BucketField[] = [...SELF_SOURCE_FIELDS, 'user_id', 'user_name'];

const entry = (counts: Counts): TotalsEntry => ({
  tokens: counts.total_tokens,
  requests: counts.request_count,
  ...costFields(counts),
});

/** The totals' groups before sorting and capping; per-day parts of them merge into a window's. */
interface TotalsParts {
  bySource: Map<string, Group>;
  byKey: Map<string, Group>;
  byUserSource: Map<string, Group>;
}

const emptyTotalsParts = (): TotalsParts => ({
  bySource: new Map(),
  byKey: new Map(),
  byUserSource: new Map(),
});

/** by_source per source; by_key per (key id, key name, user id, user name) of key traffic; by_user_source per (source, user id, user name) of non-key traffic. */
function accumulateTotals(
  facts: readonly SourceFact[],
  parts: TotalsParts = emptyTotalsParts(),
): TotalsParts {
  for (const fact of facts) {
    addToGroup(parts.bySource, [fact.source], fact);
    if (fact.api_key_id !== '') {
      addToGroup(parts.byKey, [fact.api_key_id, fact.api_key_name, fact.user_id, fact.user_name], fact);
    }
    if (fact.source !== 'apikey')
      addToGroup(parts.byUserSource, [fact.source, fact.user_id, fact.user_name], fact);
  }
  return parts;
}

function mergeTotalsParts(into: TotalsParts, from: TotalsParts): void {
  for (const name of ['bySource', 'byKey', 'byUserSource'] as const) {
    for (const group of from[name].values()) addToGroup(into[name], group.id, group.counts, group.key);
  }
}

/** Sorts, caps and shapes the totals (reference 8.5); `distinctKeys` decides `truncated`. */
async function finishTotals(
  db: Db,
  parts: TotalsParts,
  admin: boolean,
): Promise<{ totals: SourceTotals; distinctKeys: number }> {
  const bySource: Record<string, TotalsEntry> = {};
  const grand: Counts = {
    prompt_tokens: 0,
    completion_tokens: 0,
    total_tokens: 0,
    request_count: 0,
    last_used: 0,
    cost_nanos: 0,
    unpriced_count: 0,
  };
  for (const { id, counts } of [...parts.bySource.values()].sort(byKey)) {
    bySource[id[0] ?? ''] = entry(counts);
    grand.total_tokens += counts.total_tokens;
    grand.request_count += counts.request_count;
    grand.cost_nanos += counts.cost_nanos;
    grand.unpriced_count += counts.unpriced_count;
  }
  const grandTotal = entry(grand);

  const keyGroups = [...parts.byKey.values()].sort(byTokensThenKey).slice(0, MAX_KEY_TOTALS);
  const states = await findApiKeyStates(db, [...new Set(keyGroups.map((group) => group.id[0] ?? ''))]);
  const byKeyTotals: KeyTotal[] = keyGroups.map(({ id, counts }) => {
    const [apiKeyId = '', apiKeyName = '', userId = '', userName = ''] = id;
    const state = states.get(apiKeyId);
    return {
      api_key_id: apiKeyId,
      api_key_name: apiKeyName,
      user_id: userId,
      user_name: userName,
      tokens: counts.total_tokens,
      requests: counts.request_count,
      ...costFields(counts),
      last_used: new Date(counts.last_used).toISOString(),
      key_prefix: state?.prefix ?? '',
      revoked: state === undefined || state.revoked,
    };
  });

  const totals: SourceTotals = { by_source: bySource, by_key: byKeyTotals, grand_total: grandTotal };
  if (admin) {
    const byUserSource: UserSourceTotal[] = [...parts.byUserSource.values()]
      .sort(byTokensThenKey)
      .map(({ id, counts }) => ({
        source: id[0] ?? '',
        user_id: id[1] ?? '',
        user_name: id[2] ?? '',
        tokens: counts.total_tokens,
        requests: counts.request_count,
        ...costFields(counts),
      }));
    if (byUserSource.length > 0) totals.by_user_source = byUserSource;
  }
  const distinctKeys = new Set([...parts.byKey.values()].map((group) => group.id[0])).size;
  return { totals, distinctKeys };
}

export function computeSourceTotals(
  db: Db,
  facts: readonly SourceFact[],
  admin: boolean,
): Promise<{ totals: SourceTotals; distinctKeys: number }> {
  return finishTotals(db, accumulateTotals(facts), admin);
}

/**
 * `GET /api/auth/usage/sources`: the caller's traffic without legacy, buckets by (bucket, source,
 * key id, key name), `truncated` always false (reference 8.5).
 */
export async function getUserSources(
  db: Db,
  userId: string,
  window: ResolvedWindow,
): Promise<SourcesResponse> {
  const facts = await getSourceFacts(db, {
    range: window.range,
    granularity: window.granularity,
    userId,
    excludeLegacy: true,
  });
  const { totals } = await computeSourceTotals(db, facts, false);
  return {
    buckets: toBuckets(facts, SELF_SOURCE_FIELDS),
    totals,
    truncated: false,
    window: window.window,
  };
}

/**
 * `GET /api/auth/admin/usage/sources`: every source, buckets also by user, `by_user_source`, and
 * `truncated` when more than 200 distinct key ids matched (reference 8.5).
 */
export async function getAllSources(
  db: Db,
  window: ResolvedWindow,
  filter: { userId?: string; apiKeyId?: string },
): Promise<SourcesResponse> {
  const facts = await getSourceFacts(db, {
    range: window.range,
    granularity: window.granularity,
    userId: filter.userId,
    apiKeyId: filter.apiKeyId,
  });
  const { totals, distinctKeys } = await computeSourceTotals(db, facts, true);
  return {
    buckets: toBuckets(facts, ADMIN_SOURCE_FIELDS),
    totals,
    truncated: distinctKeys > MAX_KEY_TOTALS,
    window: window.window,
  };
}

/** One UTC day's part of the unfiltered admin Sources answer, valid while the day's version holds. */
interface DayPart {
  version: number;
  /** The day's buckets, serialised as UTF-8, comma-separated (no brackets); empty when none. */
  buckets: Buffer;
  /** The day's share of the totals. */
  totals: TotalsParts;
  /** The day's facts, for the dashboard's folded view (sources-view.ts): ~1,200 with 1,000 keys. */
  facts: readonly SourceFact[];
}

// Days kept per database: a month and a week of answers with room to spare. With 1,000 keys a day
// is ~1,200 buckets, ~270 KB of JSON plus its groups.
const MAX_CACHED_DAYS = 62;
const dayParts = new WeakMap<Db, Map<number, DayPart>>();
// A rolling window moves once an hour at most, so a handful of merged windows covers week and month.
const MAX_MERGED_WINDOWS = 4;
const mergedWindows = new WeakMap<
  Db,
  Map<
    string,
    { signature: string; parts: Buffer[]; totals: TotalsParts; body?: { tail: string; bytes: Buffer } }
  >
>();

function buildDayPart(version: number, facts: readonly SourceFact[]): DayPart {
  const buckets = toBuckets(facts, ADMIN_SOURCE_FIELDS);
  return {
    version,
    buckets: Buffer.from(buckets.map((bucket) => JSON.stringify(bucket)).join(',')),
    totals: accumulateTotals(facts),
    facts,
  };
}

const COMMA = Buffer.from(',');

/** Brings the cached day parts of the window up to date with the day versions (read first). */
async function refreshDayParts(
  db: Db,
  window: ResolvedWindow,
): Promise<{ cache: Map<number, DayPart>; versions: Map<number, number> }> {
  let cache = dayParts.get(db);
  if (!cache) {
    cache = new Map();
    dayParts.set(db, cache);
  }
  const versions = await getDayVersions(db, window.range);
  const stale = [...versions].filter(([day, version]) => cache.get(day)?.version !== version);
  if (stale.length > 0) {
    const facts = await getDailySourceFactsOfDays(
      db,
      stale.map(([day]) => day),
    );
    const byDay = new Map<number, SourceFact[]>();
    for (const fact of facts) {
      const list = byDay.get(fact.day);
      if (list) list.push(fact);
      else byDay.set(fact.day, [fact]);
    }
    for (const [day, version] of stale) cache.set(day, buildDayPart(version, byDay.get(day) ?? []));
  }
  if (cache.size > MAX_CACHED_DAYS) {
    const keep = new Set([...versions.keys()].sort((a, b) => a - b).slice(-MAX_CACHED_DAYS));
    for (const day of [...cache.keys()].sort((a, b) => b - a).slice(MAX_CACHED_DAYS)) {
      if (!keep.has(day)) cache.delete(day);
    }
  }
  return { cache, versions };
}

/**
 * The unfiltered daily sources facts of the window from the day-part cache, or null when the query
 * is not the cached kind (filtered, or not day buckets).
 */
export async function getCachedDailySourceFacts(
  db: Db,
  window: ResolvedWindow,
  filter: { userId?: string; apiKeyId?: string },
): Promise<SourceFact[] | null> {
  if (filter.userId !== undefined || filter.apiKeyId !== undefined || window.granularity !== 'day')
    return null;
  const { cache, versions } = await refreshDayParts(db, window);
  const facts: SourceFact[] = [];
  for (const day of [...versions.keys()].sort((a, b) => a - b)) {
    const part = cache.get(day);
    if (part) for (const fact of part.facts) facts.push(fact);
  }
  return facts;
}

/**
 * `GET /api/auth/admin/usage/sources`, serialised. The unfiltered day-bucket answer (periods week
 * and month, the dashboard's default view) is assembled from per-day parts cached in memory and
 * checked against the day versions that triggers bump in every writer's transaction (migration
 * 0031): a request reads ~30 version rows, rebuilds only the days that changed (today, under live
 * traffic) and reuses the rest. The answer is identical to getAllSources'; every other query takes
 * the direct path. Reading the versions before the facts means a cached part is never older than
 * its version says, so the cache never serves stale data across instances.
 */
export async function getAllSourcesJson(
  db: Db,
  window: ResolvedWindow,
  filter: { userId?: string; apiKeyId?: string },
): Promise<string | Buffer> {
  if (filter.userId !== undefined || filter.apiKeyId !== undefined || window.granularity !== 'day') {
    return JSON.stringify(await getAllSources(db, window, filter));
  }
  const { cache, versions } = await refreshDayParts(db, window);
  const days = [...versions.keys()].sort((a, b) => a - b);
  // The merged window is memoised too, under the exact (day, version) list it was built from; the
  // totals are still finished per request, so key revocations (not day changes) show at once.
  const signature = `${window.window.from}|${window.window.to}|${days.map((day) => `${day}:${versions.get(day)}`).join(',')}`;
  let windows = mergedWindows.get(db);
  if (!windows) {
    windows = new Map();
    mergedWindows.set(db, windows);
  }
  let merged = windows.get(`${window.window.from}|${window.window.to}`);
  if (merged?.signature !== signature) {
    // The days' encoded buckets, comma-separated: a day that changed was re-encoded above, the rest
    // are reused as they are (no string joins or UTF-8 encoding of the whole 8 MB).
    const parts: Buffer[] = [];
    const totalsParts = emptyTotalsParts();
    for (const day of days) {
      const part = cache.get(day);
      if (!part) continue;
      if (part.buckets.length > 0) {
        if (parts.length > 0) parts.push(COMMA);
        parts.push(part.buckets);
      }
      mergeTotalsParts(totalsParts, part.totals);
    }
    merged = { signature, parts, totals: totalsParts };
    if (windows.size >= MAX_MERGED_WINDOWS) windows.clear();
    windows.set(`${window.window.from}|${window.window.to}`, merged);
  }
  const { totals, distinctKeys } = await finishTotals(db, merged.totals, true);
  const tail = `"totals":${JSON.stringify(totals)},"truncated":${distinctKeys > MAX_KEY_TOTALS},"window":${JSON.stringify(window.window)}}`;
  // The encoded body is kept while the totals (key states included) are unchanged: re-encoding
  // 8 MB of JSON for every request would cost more than the rest of the request.
  if (merged.body?.tail !== tail) {
    const bytes = Buffer.concat([Buffer.from('{"buckets":['), ...merged.parts, Buffer.from(`],${tail}`)]);
    merged.body = { tail, bytes };
  }
  return merged.body.bytes;
}
