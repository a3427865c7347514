import { type AliasedSelectQueryBuilder, type SelectQueryBuilder, sql } from 'kysely';
import type { Db } from '../db/connection.ts';
import { type BucketUnit, bucketLabel } from '../db/dialect.ts';
import type { Database, UsageRecordRow } from '../db/schema.ts';

/**
 * SQL of the usage endpoints. Reads only the rollups: usage_rollups_hourly for hour buckets and the
 * daily tables derived from it (migration 0030) for day and month buckets. Windows arrive aligned to
 * the bucket size (see shared/usage.ts), so a bucket is always read whole from one table.
 */

/** [start, end) in epoch ms, aligned to the granularity; null = unbounded. */
export interface TimeRange {
  start: number | null;
  end: number | null;
}

export interface FactQuery {
  range: TimeRange;
  granularity: BucketUnit;
  userId?: string;
  apiKeyId?: string;
  /** The self sources endpoint never shows legacy traffic (reference 8.5). */
  excludeLegacy?: boolean;
}

/** What every usage fact sums (the service's groups add them up the same way). */
export interface Sums {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  request_count: number;
  last_used: number;
  /** Integer nano-USD of the priced requests. */
  cost_nanos: number;
  unpriced_count: number;
}

/** One row per (bucket, source, key id, key name, user id, user name). */
export interface SourceFact extends Sums {
  bucket: string;
  source: string;
  api_key_id: string;
  api_key_name: string;
  user_id: string;
  user_name: string;
}

/** One row per (bucket, model, user id, user name). */
export interface ModelFact extends Sums {
  bucket: string;
  model: string;
  user_id: string;
  user_name: string;
}

interface SourceColumns extends Sums {
  t: number;
  user_id: string;
  user_name: string;
  source: string;
  api_key_id: string;
  api_key_name: string;
}

interface ModelColumns extends Sums {
  t: number;
  user_id: string;
  user_name: string;
  model: string;
  api_key_id: string;
}

const SUM_COLUMNS = [
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'request_count',
  'last_used',
  'cost_nanos',
  'unpriced_count',
] as const;

type Filterable<O> = SelectQueryBuilder<Database, keyof Database, O>;

function applyRange<O>(qb: Filterable<O>, column: 'hour' | 'day', range: TimeRange): Filterable<O> {
  let query = qb;
  if (range.start !== null) query = query.where(sql.ref(column), '>=', range.start);
  if (range.end !== null) query = query.where(sql.ref(column), '<', range.end);
  return query;
}

function applyFilters<O>(qb: Filterable<O>, query: FactQuery, withSource: boolean): Filterable<O> {
  let result = qb;
  if (query.userId !== undefined) result = result.where(sql.ref('user_id'), '=', query.userId);
  if (query.apiKeyId !== undefined) result = result.where(sql.ref('api_key_id'), '=', query.apiKeyId);
  if (withSource && query.excludeLegacy) result = result.where(sql.ref('source'), '<>', 'legacy');
  return result;
}

/** The rollup rows of the window, filtered, with the time column renamed `t`. */
function sourceRows(db: Db, query: FactQuery): AliasedSelectQueryBuilder<SourceColumns, 'r'> {
  const columns = ['user_id', 'user_name', 'source', 'api_key_id', 'api_key_name', ...SUM_COLUMNS] as const;
  if (query.granularity === 'hour') {
    const base = db.kysely.selectFrom('usage_rollups_hourly').select(['hour as t', ...columns]);
    return applyFilters(applyRange(base as Filterable<SourceColumns>, 'hour', query.range), query, true).as(
      'r',
    );
  }
  const base = db.kysely.selectFrom('usage_rollups_daily_sources').select(['day as t', ...columns]);
  return applyFilters(applyRange(base as Filterable<SourceColumns>, 'day', query.range), query, true).as('r');
}

function modelRows(db: Db, query: FactQuery): AliasedSelectQueryBuilder<ModelColumns, 'r'> {
  // Only the hourly table knows the key, so a key-scoped query (GET /v1/usage) always reads it.
  if (query.granularity === 'hour' || query.apiKeyId !== undefined) {
    const base = db.kysely
      .selectFrom('usage_rollups_hourly')
      .select(['hour as t', 'user_id', 'user_name', 'model', 'api_key_id', ...SUM_COLUMNS]);
    return applyFilters(applyRange(base as Filterable<ModelColumns>, 'hour', query.range), query, false).as(
      'r',
    );
  }
  const base = db.kysely
    .selectFrom('usage_rollups_daily_models')
    .select(['day as t', 'user_id', 'user_name', 'model', sql.lit('').as('api_key_id'), ...SUM_COLUMNS]);
  return applyFilters(applyRange(base as Filterable<ModelColumns>, 'day', query.range), query, false).as('r');
}

const toSums = (row: Record<keyof Sums, unknown>): Sums => ({
  prompt_tokens: Number(row.prompt_tokens),
  completion_tokens: Number(row.completion_tokens),
  total_tokens: Number(row.total_tokens),
  request_count: Number(row.request_count),
  last_used: Number(row.last_used),
  cost_nanos: Number(row.cost_nanos),
  unpriced_count: Number(row.unpriced_count),
});

/** Sources facts at the finest grouping any sources response needs; the service merges from here. */
export async function getSourceFacts(db: Db, query: FactQuery): Promise<SourceFact[]> {
  const bucket = bucketLabel(db.dialect, 'r.t', query.granularity);
  const rows =
    query.granularity === 'day'
      ? // A daily row is already one fact (its primary key is the grouping): no GROUP BY, which
        // halves the cost of a 30-day admin query (~36,000 rows with 1,000 keys).
        await db.kysely
          .selectFrom(sourceRows(db, query))
          .select([
            bucket.as('bucket'),
            'r.source',
            'r.api_key_id',
            'r.api_key_name',
            'r.user_id',
            'r.user_name',
            'r.prompt_tokens',
            'r.completion_tokens',
            'r.total_tokens',
            'r.request_count',
            'r.last_used',
            'r.cost_nanos',
            'r.unpriced_count',
          ])
          .execute()
      : await db.kysely
          .selectFrom(sourceRows(db, query))
          .select((eb) => [
            bucket.as('bucket'),
            'r.source',
            'r.api_key_id',
            'r.api_key_name',
            'r.user_id',
            'r.user_name',
            eb.fn.sum<number>('r.prompt_tokens').as('prompt_tokens'),
            eb.fn.sum<number>('r.completion_tokens').as('completion_tokens'),
            eb.fn.sum<number>('r.total_tokens').as('total_tokens'),
            eb.fn.sum<number>('r.request_count').as('request_count'),
            eb.fn.max<number>('r.last_used').as('last_used'),
            eb.fn.sum<number>('r.cost_nanos').as('cost_nanos'),
            eb.fn.sum<number>('r.unpriced_count').as('unpriced_count'),
          ])
          .groupBy([bucket, 'r.source', 'r.api_key_id', 'r.api_key_name', 'r.user_id', 'r.user_name'])
          .execute();
  return rows.map((row) => ({
    bucket: String(row.bucket),
    source: row.source,
    api_key_id: row.api_key_id,
    api_key_name: row.api_key_name,
    user_id: row.user_id,
    user_name: row.user_name,
    ...toSums(row),
  }));
}

/** Versions of the days in the range that have rollups (migration 0031). */
export async function getDayVersions(db: Db, range: TimeRange): Promise<Map<number, number>> {
  let query = db.kysely.selectFrom('usage_rollup_day_versions').select(['day', 'version']);
  if (range.start !== null) query = query.where('day', '>=', range.start);
  if (range.end !== null) query = query.where('day', '<', range.end);
  const rows = await query.execute();
  return new Map(rows.map((row) => [Number(row.day), Number(row.version)]));
}

/** Unfiltered daily sources facts of the given days, each with its day. */
export async function getDailySourceFactsOfDays(
  db: Db,
  days: readonly number[],
): Promise<(SourceFact & { day: number })[]> {
  const facts: (SourceFact & { day: number })[] = [];
  for (let i = 0; i < days.length; i += 500) {
    const chunk = days.slice(i, i + 500);
    const rows = await db.kysely
      .selectFrom('usage_rollups_daily_sources as r')
      .select([
        'r.day',
        bucketLabel(db.dialect, 'r.day', 'day').as('bucket'),
        'r.source',
        'r.api_key_id',
        'r.api_key_name',
        'r.user_id',
        'r.user_name',
        'r.prompt_tokens',
        'r.completion_tokens',
        'r.total_tokens',
        'r.request_count',
        'r.last_used',
        'r.cost_nanos',
        'r.unpriced_count',
      ])
      .where('r.day', 'in', chunk)
      .execute();
    for (const row of rows) {
      facts.push({
        day: Number(row.day),
        bucket: String(row.bucket),
        source: row.source,
        api_key_id: row.api_key_id,
        api_key_name: row.api_key_name,
        user_id: row.user_id,
        user_name: row.user_name,
        ...toSums(row),
      });
    }
  }
  return facts;
}

/** Model facts grouped by (bucket, model) plus, when `byUser`, (user id, user name). */
export async function getModelFacts(db: Db, query: FactQuery & { byUser: boolean }): Promise<ModelFact[]> {
  const bucket = bucketLabel(db.dialect, 'r.t', query.granularity);
  const sums = db.kysely
    .selectFrom(modelRows(db, query))
    .select((eb) => [
      bucket.as('bucket'),
      'r.model',
      eb.fn.sum<number>('r.prompt_tokens').as('prompt_tokens'),
      eb.fn.sum<number>('r.completion_tokens').as('completion_tokens'),
      eb.fn.sum<number>('r.total_tokens').as('total_tokens'),
      eb.fn.sum<number>('r.request_count').as('request_count'),
      eb.fn.max<number>('r.last_used').as('last_used'),
      eb.fn.sum<number>('r.cost_nanos').as('cost_nanos'),
      eb.fn.sum<number>('r.unpriced_count').as('unpriced_count'),
    ]);
  if (query.byUser) {
    const rows = await sums
      .select(['r.user_id', 'r.user_name'])
      .groupBy([bucket, 'r.model', 'r.user_id', 'r.user_name'])
      .execute();
    return rows.map((row) => ({
      bucket: String(row.bucket),
      model: row.model,
      user_id: row.user_id,
      user_name: row.user_name,
      ...toSums(row),
    }));
  }
  const rows = await sums.groupBy([bucket, 'r.model']).execute();
  return rows.map((row) => ({
    bucket: String(row.bucket),
    model: row.model,
    user_id: '',
    user_name: '',
    ...toSums(row),
  }));
}

export interface ApiKeyState {
  prefix: string;
  revoked: boolean;
}

/** Prefix and revocation of the given key ids; ids missing from the map no longer exist. */
export async function findApiKeyStates(db: Db, ids: readonly string[]): Promise<Map<string, ApiKeyState>> {
  const states = new Map<string, ApiKeyState>();
  // 500 ids per statement keeps well under both databases' parameter limits.
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    if (chunk.length === 0) continue;
    const rows = await db.kysely
      .selectFrom('api_keys')
      .select(['id', 'key_prefix', 'revoked_at'])
      .where('id', 'in', chunk)
      .execute();
    for (const row of rows) states.set(row.id, { prefix: row.key_prefix, revoked: row.revoked_at !== null });
  }
  return states;
}

/**
 * The rows of a raw-row query in pages of `size`, in (created_at, id) order, each page read after
 * the last row of the one before (a keyset cursor: every page costs the same, whatever the table's
 * size, and memory stays at one page).
 */
export async function* keysetPages<O extends { created_at: number; id: string }>(
  query: SelectQueryBuilder<Database, 'usage_records', O>,
  size: number,
): AsyncGenerator<O[]> {
  let cursor: { createdAt: number; id: string } | null = null;
  for (;;) {
    const from = cursor;
    const after = from
      ? query.where((eb) =>
          eb.or([
            eb('created_at', '>', from.createdAt),
            eb.and([eb('created_at', '=', from.createdAt), eb('id', '>', from.id)]),
          ]),
        )
      : query;
    const rows: O[] = await after.orderBy('created_at').orderBy('id').limit(size).execute();
    if (rows.length === 0) return;
    yield rows;
    const last = rows[rows.length - 1];
    if (!last || rows.length < size) return;
    cursor = { createdAt: Number(last.created_at), id: last.id };
  }
}

export interface RecordQuery {
  range: TimeRange;
  userId?: string;
  apiKeyId?: string;
}

/**
 * Raw usage rows of the window in (created_at, id) order, read in pages with a keyset cursor so that
 * memory stays constant whatever the size of the export.
 */
export async function* iterateUsageRecords(
  db: Db,
  query: RecordQuery,
  pageSize = 1000,
): AsyncGenerator<UsageRecordRow[]> {
  let page = db.kysely.selectFrom('usage_records').selectAll();
  if (query.range.start !== null) page = page.where('created_at', '>=', query.range.start);
  if (query.range.end !== null) page = page.where('created_at', '<', query.range.end);
  if (query.userId !== undefined) page = page.where('user_id', '=', query.userId);
  if (query.apiKeyId !== undefined) page = page.where('api_key_id', '=', query.apiKeyId);
  for await (const rows of keysetPages(page, pageSize)) {
    yield rows.map((row) => ({
      ...row,
      prompt_tokens: Number(row.prompt_tokens),
      completion_tokens: Number(row.completion_tokens),
      total_tokens: Number(row.total_tokens),
      duration_ms: Number(row.duration_ms),
      created_at: Number(row.created_at),
      aborted: Number(row.aborted),
      stream: Number(row.stream),
      cached_tokens: row.cached_tokens === null ? null : Number(row.cached_tokens),
      cache_write_tokens: row.cache_write_tokens === null ? null : Number(row.cache_write_tokens),
      reasoning_tokens: row.reasoning_tokens === null ? null : Number(row.reasoning_tokens),
      cost_nanos: row.cost_nanos === null ? null : Number(row.cost_nanos),
    }));
  }
}

/** Sums of every rollup row in the window (the `compare=previous` totals): one aggregate row. */
export async function getRangeTotals(db: Db, query: FactQuery): Promise<Omit<Sums, 'last_used'>> {
  const row = await db.kysely
    .selectFrom(sourceRows(db, query))
    .select((eb) => [
      eb.fn.sum<number>('r.prompt_tokens').as('prompt_tokens'),
      eb.fn.sum<number>('r.completion_tokens').as('completion_tokens'),
      eb.fn.sum<number>('r.total_tokens').as('total_tokens'),
      eb.fn.sum<number>('r.request_count').as('request_count'),
      eb.fn.sum<number>('r.cost_nanos').as('cost_nanos'),
      eb.fn.sum<number>('r.unpriced_count').as('unpriced_count'),
    ])
    .executeTakeFirst();
  // SUM over no rows is NULL on both databases; PostgreSQL returns sums as strings.
  return {
    prompt_tokens: Number(row?.prompt_tokens ?? 0),
    completion_tokens: Number(row?.completion_tokens ?? 0),
    total_tokens: Number(row?.total_tokens ?? 0),
    request_count: Number(row?.request_count ?? 0),
    cost_nanos: Number(row?.cost_nanos ?? 0),
    unpriced_count: Number(row?.unpriced_count ?? 0),
  };
}
