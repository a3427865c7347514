import type SqliteDatabase from 'better-sqlite3';
import { hourStart } from '../db/hours.ts';
import type { NewUsageRecordRow, UsageRollupsHourlyTable } from '../db/schema.ts';

/**
 * The SQLite side of usage ingest, on better-sqlite3 prepared statements alone: no Kysely, pg or
 * zod, so the usage writer thread (sqlite-writer.ts) loads only this (~10 MB of RSS for the thread
 * instead of ~40 MB) and compiles no query per batch.
 */

export type UsageRow = NewUsageRecordRow;

/** One rollup row's worth of rows: the hourly table's columns. */
type RollupDelta = UsageRollupsHourlyTable;

function rollupKey(row: UsageRow): string {
  return JSON.stringify([
    hourStart(row.created_at),
    row.user_id,
    row.user_name ?? '',
    row.source ?? '',
    row.api_key_id ?? '',
    row.api_key_name ?? '',
    row.model ?? '',
  ]);
}

/** 1 when the row has no price (a row journaled before cost existed has none either). */
function unpriced(row: UsageRow): number {
  return row.price_source === undefined || row.price_source === 'none' ? 1 : 0;
}

/** Sums rows into one delta per rollup key. */
export function aggregateRollupDeltas(rows: readonly UsageRow[]): RollupDelta[] {
  const deltas = new Map<string, RollupDelta>();
  for (const row of rows) {
    const key = rollupKey(row);
    const delta = deltas.get(key);
    if (delta) {
      delta.prompt_tokens += Number(row.prompt_tokens ?? 0);
      delta.completion_tokens += Number(row.completion_tokens ?? 0);
      delta.total_tokens += Number(row.total_tokens ?? 0);
      delta.cached_tokens += Number(row.cached_tokens ?? 0);
      delta.cache_write_tokens += Number(row.cache_write_tokens ?? 0);
      delta.reasoning_tokens += Number(row.reasoning_tokens ?? 0);
      delta.cost_nanos += Number(row.cost_nanos ?? 0);
      delta.unpriced_count += unpriced(row);
      delta.request_count += 1;
      delta.last_used = Math.max(delta.last_used, row.created_at);
    } else {
      deltas.set(key, {
        hour: hourStart(row.created_at),
        user_id: row.user_id,
        user_name: row.user_name ?? '',
        source: row.source ?? '',
        api_key_id: row.api_key_id ?? '',
        api_key_name: row.api_key_name ?? '',
        model: row.model ?? '',
        prompt_tokens: Number(row.prompt_tokens ?? 0),
        completion_tokens: Number(row.completion_tokens ?? 0),
        total_tokens: Number(row.total_tokens ?? 0),
        cached_tokens: Number(row.cached_tokens ?? 0),
        cache_write_tokens: Number(row.cache_write_tokens ?? 0),
        reasoning_tokens: Number(row.reasoning_tokens ?? 0),
        cost_nanos: Number(row.cost_nanos ?? 0),
        unpriced_count: unpriced(row),
        request_count: 1,
        last_used: row.created_at,
      });
    }
  }
  return [...deltas.values()];
}

// The raw table's columns (and their PostgreSQL types).
export const RAW_COLUMNS = [
  ['id', 'text'],
  ['user_id', 'text'],
  ['user_name', 'text'],
  ['source', 'text'],
  ['api_key_id', 'text'],
  ['api_key_name', 'text'],
  ['model', 'text'],
  ['endpoint', 'text'],
  ['prompt_tokens', 'int8'],
  ['completion_tokens', 'int8'],
  ['total_tokens', 'int8'],
  ['duration_ms', 'int8'],
  ['created_at', 'int8'],
  ['usage_origin', 'text'],
  ['aborted', 'int4'],
  ['stream', 'int4'],
  ['upstream', 'text'],
  ['cached_tokens', 'int8'],
  ['cache_write_tokens', 'int8'],
  ['reasoning_tokens', 'int8'],
  ['cost_nanos', 'int8'],
  ['price_source', 'text'],
] as const satisfies readonly (readonly [keyof UsageRow, string])[];

// The columns a row may omit, with their defaults (the raw table's own).
export const COLUMN_DEFAULTS: Partial<Record<keyof UsageRow, string | number>> = {
  user_name: '',
  source: '',
  api_key_name: '',
  model: '',
  endpoint: '',
  prompt_tokens: 0,
  completion_tokens: 0,
  total_tokens: 0,
  duration_ms: 0,
  usage_origin: 'provider',
  aborted: 0,
  stream: 0,
  upstream: '',
  price_source: 'none',
};

/** The hourly rollup table's columns, in insert order. */
export const ROLLUP_COLUMNS = [
  'hour',
  'user_id',
  'user_name',
  'source',
  'api_key_id',
  'api_key_name',
  'model',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'request_count',
  'last_used',
  'cached_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'cost_nanos',
  'unpriced_count',
] as const satisfies readonly (keyof RollupDelta)[];

/**
 * The hourly rollup columns from `prompt_tokens` on, as aggregates of raw rows (both dialects): the
 * grouping key columns come first in every statement that uses it.
 */
export const SQL_ROLLUP_SUMS = `sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), count(*), max(created_at),
  coalesce(sum(cached_tokens), 0), coalesce(sum(cache_write_tokens), 0), coalesce(sum(reasoning_tokens), 0),
  coalesce(sum(cost_nanos), 0), sum(case when price_source = 'none' then 1 else 0 end)`;

/** The hour (epoch ms) a `created_at` column falls in, in SQL (both dialects). */
export const SQL_HOUR_OF = 'created_at - (((created_at % 3600000) + 3600000) % 3600000)';

/**
 * The raw columns in insert order as SQL expressions: `sourceOf(column)`, or its default when that is
 * NULL (a row journaled without an optional field).
 */
export function rawColumnsWithDefaults(sourceOf: (column: string) => string): string {
  return RAW_COLUMNS.map(([column]) => {
    const fallback = COLUMN_DEFAULTS[column];
    if (fallback === undefined) return sourceOf(column);
    return `coalesce(${sourceOf(column)}, ${typeof fallback === 'number' ? fallback : `'${fallback}'`})`;
  }).join(', ');
}

const ROLLUP_UPSERT = `on conflict (hour, user_id, source, api_key_id, model, user_name, api_key_name) do update set
           prompt_tokens = prompt_tokens + excluded.prompt_tokens,
           completion_tokens = completion_tokens + excluded.completion_tokens,
           total_tokens = total_tokens + excluded.total_tokens,
           request_count = request_count + excluded.request_count,
           last_used = max(last_used, excluded.last_used),
           cached_tokens = cached_tokens + excluded.cached_tokens,
           cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
           reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
           cost_nanos = cost_nanos + excluded.cost_nanos,
           unpriced_count = unpriced_count + excluded.unpriced_count`;

interface Statements {
  raw: SqliteDatabase.Statement<unknown[]>;
  rollup: SqliteDatabase.Statement<unknown[]>;
  rawFromJson: SqliteDatabase.Statement<[Buffer]>;
  lastRowid: SqliteDatabase.Statement<[], number>;
  rollupSince: SqliteDatabase.Statement<[number]>;
}

const statements = new WeakMap<SqliteDatabase.Database, Statements>();

function statementsOf(handle: SqliteDatabase.Database): Statements {
  let found = statements.get(handle);
  if (!found) {
    const columns = RAW_COLUMNS.map(([column]) => column);
    found = {
      raw: handle.prepare<unknown[]>(
        `insert into usage_records (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})
         on conflict (id) do nothing`,
      ),
      rollup: handle.prepare<unknown[]>(
        `insert into usage_rollups_hourly (${ROLLUP_COLUMNS.join(', ')})
         values (${ROLLUP_COLUMNS.map(() => '?').join(', ')})
         ${ROLLUP_UPSERT}`,
      ),
      // The parameter is one journal line's UTF-8 bytes (a Buffer binds as a BLOB, which jsonb()
      // would read as JSONB: hence the cast); jsonb() parses it once for the 22 ->> lookups.
      rawFromJson: handle.prepare<[Buffer]>(
        `insert into usage_records (${columns.join(', ')})
         select ${rawColumnsWithDefaults((column) => `value ->> '${column}'`)}
         from (select jsonb(cast(? as text)) as value) where true
         on conflict (id) do nothing`,
      ),
      lastRowid: handle.prepare<[], number>('select coalesce(max(rowid), 0) from usage_records').pluck(),
      // The rows inserted since `rowid > ?` (SQLite gives a new row max(rowid) + 1, and this
      // transaction is the only writer), grouped into the hourly rollups.
      rollupSince: handle.prepare<[number]>(
        `insert into usage_rollups_hourly (${ROLLUP_COLUMNS.join(', ')})
         select ${SQL_HOUR_OF}, user_id, user_name, source, coalesce(api_key_id, ''), api_key_name, model,
           ${SQL_ROLLUP_SUMS}
         from usage_records where rowid > ?
         group by 1, 2, 3, 4, 5, 6, 7
         ${ROLLUP_UPSERT}`,
      ),
    };
    statements.set(handle, found);
  }
  return found;
}

/**
 * Inserts raw rows (skipping ids already stored) and adds exactly the inserted ones to the hourly
 * rollups; the caller runs it inside a transaction. Returns the number of rows inserted.
 */
export function insertUsageRowsSqlite(handle: SqliteDatabase.Database, rows: readonly UsageRow[]): number {
  const { raw, rollup } = statementsOf(handle);
  const inserted: UsageRow[] = [];
  for (const row of rows) {
    const values = RAW_COLUMNS.map(([column]) => row[column] ?? COLUMN_DEFAULTS[column] ?? null);
    if (raw.run(values).changes === 1) inserted.push(row);
  }
  for (const delta of aggregateRollupDeltas(inserted))
    rollup.run(ROLLUP_COLUMNS.map((column) => delta[column]));
  return inserted.length;
}

/**
 * Like insertUsageRowsSqlite, for journal segments as they are on disk (one JSON row per line): SQLite
 * parses each line, so no JavaScript object is made per row and no large text is ever built (a whole
 * batch as one JSON array cost the writer thread 20-35 MB of fragmented malloc arena). A line that is
 * not a whole row (torn by a crash or a full disk) is skipped. The caller runs it inside a
 * transaction. Returns the rows inserted (a row already stored is not) and the lines skipped.
 */
export function insertUsageSegmentsSqlite(
  handle: SqliteDatabase.Database,
  segments: readonly Buffer[],
): { inserted: number; skipped: number } {
  const { rawFromJson, lastRowid, rollupSince } = statementsOf(handle);
  const before = lastRowid.get() ?? 0;
  let inserted = 0;
  let skipped = 0;
  for (const segment of segments) {
    let start = 0;
    while (start < segment.length) {
      let end = segment.indexOf(0x0a, start);
      if (end === -1) end = segment.length;
      if (end > start) {
        try {
          inserted += rawFromJson.run(segment.subarray(start, end)).changes;
        } catch (error) {
          if (!isMalformedJson(error)) throw error;
          skipped += 1;
        }
      }
      start = end + 1;
    }
  }
  if (inserted > 0) rollupSince.run(before);
  return { inserted, skipped };
}

/** SQLite refused a JSON text (a line that is not a whole row). */
function isMalformedJson(error: unknown): boolean {
  return /malformed JSON/i.test((error as Error)?.message ?? '');
}
