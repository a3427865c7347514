import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/connection.ts';
import type { Database } from '../db/schema.ts';
import {
  insertUsageRowsSqlite,
  RAW_COLUMNS,
  ROLLUP_COLUMNS,
  rawColumnsWithDefaults,
  SQL_HOUR_OF,
  SQL_ROLLUP_SUMS,
  type UsageRow,
} from './sqlite-ingest.ts';

export { aggregateRollupDeltas, type UsageRow } from './sqlite-ingest.ts';

// Rows per statement on PostgreSQL (bounded so a huge import does not build a huge JSON text).
const PG_CHUNK = 10_000;

/**
 * Inserts raw usage rows and adds them to the hourly rollups in one transaction. Idempotent: a row
 * whose id is already stored is skipped, and only rows actually inserted reach the rollups, so a
 * replayed batch never double-counts. Safe with several writers (`ON CONFLICT DO UPDATE` adds).
 * Returns the number of rows inserted.
 */
export async function insertUsageBatch(db: Db, rows: readonly UsageRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  if (db.dialect === 'postgres') return insertUsageBatchPostgres(db, rows);
  const handle = db.sqlite;
  if (!handle) throw new Error('SQLite usage ingest needs the better-sqlite3 handle (Db.sqlite)');
  // Inside a Kysely transaction: it holds the connection (Kysely serialises its users), so no other
  // query of this process interleaves with the prepared statements run on the same handle.
  return db.kysely.transaction().execute(async () => insertUsageRowsSqlite(handle, rows));
}

const PG_RAW_SELECT = rawColumnsWithDefaults((column) => column);
const PG_COLUMNS = RAW_COLUMNS.map(([column]) => column).join(', ');
const PG_ROLLUP_KEY = `${SQL_HOUR_OF}, user_id, user_name, source, coalesce(api_key_id, ''), api_key_name, model`;

/**
 * PostgreSQL: the whole batch is one statement with one JSON parameter. The server expands it
 * (json_populate_recordset), inserts the raw rows it does not have yet, and adds exactly those to
 * the hourly rollups, grouped in SQL. The event loop only serialises the rows once (native
 * JSON.stringify): building 22 arrays and a rollup statement with thousands of parameters in
 * JavaScript stalled every request in flight for several milliseconds per batch.
 */
async function insertUsageBatchPostgres(db: Db, rows: readonly UsageRow[]): Promise<number> {
  return db.kysely.transaction().execute(async (trx) => {
    let inserted = 0;
    for (let i = 0; i < rows.length; i += PG_CHUNK) {
      const json = JSON.stringify(rows.slice(i, i + PG_CHUNK));
      inserted += await insertJsonArrayPostgres(trx, sql`${json}::json`);
    }
    return inserted;
  });
}

/**
 * PostgreSQL: journal segments as they are on disk, as one JSON array (segmentsAsJsonArray) sent as
 * one parameter: the bytes go from the file to the socket without becoming JavaScript strings or
 * objects. A 1000-row batch as a ~330 KB string lands in V8's large-object space, and those texts
 * piled up until a major GC (peak RSS at c=64 varied by 45 MB between runs). Throws a 22xxx data
 * exception when a row is not whole; the recorder then falls back on insertUsageBatch.
 */
export async function insertUsageJsonArrayPostgres(db: Db, array: Buffer): Promise<number> {
  // One statement is one transaction: no BEGIN and COMMIT round trips (a third of a 250-row commit's
  // time on the server, and two more turns of the pg client per commit).
  return insertJsonArrayPostgres(db.kysely, sql`${array}::text::json`);
}

async function insertJsonArrayPostgres(
  trx: Kysely<Database>,
  jsonArray: RawBuilder<unknown>,
): Promise<number> {
  const result = await sql<{ n: number }>`
    with given as (
      select ${sql.raw(PG_RAW_SELECT)}
      from json_populate_recordset(null::usage_records, ${jsonArray})
    ), inserted as (
      insert into usage_records (${sql.raw(PG_COLUMNS)})
      select * from given
      on conflict (id) do nothing
      returning created_at, user_id, user_name, source, api_key_id, api_key_name, model,
        prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens,
        reasoning_tokens, cost_nanos, price_source
    ), rolled as (
      insert into usage_rollups_hourly (${sql.raw(ROLLUP_COLUMNS.join(', '))})
      select ${sql.raw(PG_ROLLUP_KEY)}, ${sql.raw(SQL_ROLLUP_SUMS)}
      from inserted
      group by ${sql.raw(PG_ROLLUP_KEY)}
      -- In key order: concurrent writers (several instances) lock the rollup rows in the same order.
      order by ${sql.raw(PG_ROLLUP_KEY)}
      on conflict (hour, user_id, source, api_key_id, model, user_name, api_key_name) do update set
        prompt_tokens = usage_rollups_hourly.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = usage_rollups_hourly.completion_tokens + excluded.completion_tokens,
        total_tokens = usage_rollups_hourly.total_tokens + excluded.total_tokens,
        request_count = usage_rollups_hourly.request_count + excluded.request_count,
        last_used = greatest(usage_rollups_hourly.last_used, excluded.last_used),
        cached_tokens = usage_rollups_hourly.cached_tokens + excluded.cached_tokens,
        cache_write_tokens = usage_rollups_hourly.cache_write_tokens + excluded.cache_write_tokens,
        reasoning_tokens = usage_rollups_hourly.reasoning_tokens + excluded.reasoning_tokens,
        cost_nanos = usage_rollups_hourly.cost_nanos + excluded.cost_nanos,
        unpriced_count = usage_rollups_hourly.unpriced_count + excluded.unpriced_count
      returning 1
    )
    select count(*)::int as n from inserted`.execute(trx);
  return Number(result.rows[0]?.n ?? 0);
}
