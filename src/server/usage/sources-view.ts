import type { SourcesResponse, UsageBucket, UsageTotals } from '../../shared/usage.ts';
import { MAX_KEY_TOTALS } from '../../shared/usage.ts';
import { usdOf } from '../cost/rates.ts';
import type { Db } from '../db/connection.ts';
import {
  ADMIN_SOURCE_FIELDS,
  computeSourceTotals,
  getCachedDailySourceFacts,
  SELF_SOURCE_FIELDS,
} from './sources.service.ts';
import { getRangeTotals, getSourceFacts, type SourceFact } from './usage.repository.ts';
import { toBuckets } from './usage-groups.ts';
import { ceilToUnit, type ResolvedWindow } from './usage-window.ts';

/**
 * The dashboard's view of the sources endpoints (`top`, `keep`, `compare`; shared/usage.ts
 * SourcesViewQuery): the same facts and totals as the LocalAI-shaped answer, with the buckets of
 * all but the largest series folded into "other" and a sparkline per table row, so the Sources tab
 * downloads what it draws (8 series and a 200-row table) instead of every key's buckets.
 */

export interface SourcesFilter {
  userId?: string;
  apiKeyId?: string;
}

export interface SourcesView {
  top?: number;
  keep?: string;
  compare?: 'previous';
}

// Identity parts joined by NUL, as in usage.service.ts: NUL never occurs in PostgreSQL text.
const SEPARATOR = '\u0000';

/**
 * A series' identity, the same the dashboard selects by: an API key's id; non-key traffic per
 * (source, user) on the admin endpoint and per source on the caller's own.
 */
export function seriesIdOf(
  fact: Pick<SourceFact, 'source' | 'api_key_id' | 'user_id'>,
  admin: boolean,
): string {
  if (fact.source === 'apikey') return fact.api_key_id || 'apikey';
  return admin ? `${fact.source}:${fact.user_id}` : fact.source;
}

/** `/api/auth/usage/sources` (admin false) or `/api/auth/admin/usage/sources` with the view's extras. */
export async function getSourcesView(
  db: Db,
  window: ResolvedWindow,
  filter: SourcesFilter & { excludeLegacy?: boolean },
  admin: boolean,
  view: SourcesView,
  now: number,
): Promise<SourcesResponse> {
  const query = { range: window.range, granularity: window.granularity, ...filter };
  // The unfiltered admin month is the dashboard's default view: its facts come from the day-part
  // cache (usage.service.ts), which saves reading and converting ~36,000 rows per request.
  const facts =
    (admin ? await getCachedDailySourceFacts(db, window, filter) : null) ?? (await getSourceFacts(db, query));
  const { totals, distinctKeys } = await computeSourceTotals(db, facts, admin);
  const fields = admin ? ADMIN_SOURCE_FIELDS : SELF_SOURCE_FIELDS;
  const response: SourcesResponse = {
    // With `top` the buckets are replaced by the folded ones below.
    buckets: view.top === undefined ? toBuckets(facts, fields) : [],
    totals,
    truncated: admin && distinctKeys > MAX_KEY_TOTALS,
    window: window.window,
  };
  if (view.top !== undefined)
    Object.assign(response, foldSeries(facts, response, admin, view.top, view.keep));
  if (view.compare === 'previous') response.previous = await getPreviousTotals(db, window, filter, now);
  return response;
}

/** The `top` extras: folded buckets, sparklines, last use of non-key rows. */
function foldSeries(
  facts: readonly SourceFact[],
  response: SourcesResponse,
  admin: boolean,
  top: number,
  keep: string | undefined,
): Pick<SourcesResponse, 'buckets' | 'other_series' | 'bucket_labels' | 'source_last_used' | 'totals'> {
  const seriesTotals = new Map<string, number>();
  for (const fact of facts) {
    const id = seriesIdOf(fact, admin);
    seriesTotals.set(id, (seriesTotals.get(id) ?? 0) + fact.total_tokens);
  }
  const ranked = [...seriesTotals.entries()].sort(
    (a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0),
  );
  const kept = new Set(ranked.slice(0, top).map(([id]) => id));
  if (keep !== undefined && seriesTotals.has(keep)) kept.add(keep);
  const keptFacts: SourceFact[] = [];
  const foldedFacts: SourceFact[] = [];
  for (const fact of facts) (kept.has(seriesIdOf(fact, admin)) ? keptFacts : foldedFacts).push(fact);
  const folded = toBuckets(foldedFacts, ['source']).map(
    (bucket): UsageBucket => ({ ...bucket, other: true }),
  );
  // Kept buckets keep the default order; each label's folded buckets follow its kept ones.
  const buckets = [...toBuckets(keptFacts, admin ? ADMIN_SOURCE_FIELDS : SELF_SOURCE_FIELDS), ...folded].sort(
    (a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0),
  );

  const labels = [...new Set(facts.map((fact) => fact.bucket))].sort();
  const slot = new Map(labels.map((label, index) => [label, index]));
  const keyLines = new Map<string, number[]>();
  const userSourceLines = new Map<string, number[]>();
  const userSourceLastUsed = new Map<string, number>();
  const sourceLastUsed: Record<string, string> = {};
  const add = (lines: Map<string, number[]>, key: string, fact: SourceFact) => {
    let line = lines.get(key);
    if (!line) {
      line = new Array<number>(labels.length).fill(0);
      lines.set(key, line);
    }
    const index = slot.get(fact.bucket) ?? 0;
    line[index] = (line[index] ?? 0) + fact.total_tokens;
  };
  for (const fact of facts) {
    if (fact.api_key_id !== '') {
      add(keyLines, [fact.api_key_id, fact.api_key_name, fact.user_id, fact.user_name].join(SEPARATOR), fact);
    }
    if (fact.source !== 'apikey') {
      const key = [fact.source, fact.user_id, fact.user_name].join(SEPARATOR);
      add(userSourceLines, key, fact);
      userSourceLastUsed.set(key, Math.max(userSourceLastUsed.get(key) ?? 0, fact.last_used));
      const previous = sourceLastUsed[fact.source];
      if (fact.last_used > 0 && (previous === undefined || Date.parse(previous) < fact.last_used)) {
        sourceLastUsed[fact.source] = new Date(fact.last_used).toISOString();
      }
    }
  }
  const byKey = response.totals.by_key.map((entry) => ({
    ...entry,
    sparkline:
      keyLines.get([entry.api_key_id, entry.api_key_name, entry.user_id, entry.user_name].join(SEPARATOR)) ??
      [],
  }));
  const byUserSource = response.totals.by_user_source?.map((entry) => {
    const key = [entry.source, entry.user_id, entry.user_name].join(SEPARATOR);
    const lastUsed = userSourceLastUsed.get(key) ?? 0;
    return {
      ...entry,
      last_used: lastUsed > 0 ? new Date(lastUsed).toISOString() : '',
      sparkline: userSourceLines.get(key) ?? [],
    };
  });
  return {
    buckets,
    totals: {
      ...response.totals,
      by_key: byKey,
      ...(byUserSource ? { by_user_source: byUserSource } : {}),
    },
    other_series: seriesTotals.size - kept.size,
    bucket_labels: labels,
    source_last_used: sourceLastUsed,
  };
}

/**
 * Totals of the window of the same length just before this one, in whole buckets: an open window
 * ends at the end of the current bucket, so `month` (30 whole days and today) compares with the 31
 * days before it. Null for `all`, which has nothing before it.
 */
export async function getPreviousTotals(
  db: Db,
  window: ResolvedWindow,
  filter: SourcesFilter & { excludeLegacy?: boolean },
  now: number,
): Promise<UsageTotals | null> {
  const { start, end } = window.range;
  if (start === null) return null;
  const length = (end ?? ceilToUnit(now + 1, window.granularity)) - start;
  // Month-sized buckets are read from the daily table: the previous window starts on a day boundary
  // but not necessarily on a month boundary.
  const granularity = window.granularity === 'hour' ? 'hour' : 'day';
  const { userId, apiKeyId, excludeLegacy } = filter;
  const { cost_nanos, unpriced_count, ...tokens } = await getRangeTotals(db, {
    range: { start: start - length, end: start },
    granularity,
    userId,
    apiKeyId,
    excludeLegacy,
  });
  return { ...tokens, cost: usdOf(cost_nanos), unpriced_requests: unpriced_count };
}
