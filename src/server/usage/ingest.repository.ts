import type SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import type { Db } from '../db/connection.ts';
import { greatest, hourStart } from '../db/dialect.ts';
import type { NewUsageRecordRow } from '../db/schema.ts';

export type UsageRow = NewUsageRecordRow;

const ROLLUP_CHUNK = 1000;
// Rows per statement on PostgreSQL (bounded so a huge import does not build a huge JSON text).
const PG_CHUNK = 10_000;

interface RollupDelta {
  hour: number;
  user_id: string;
  user_name: string;
  source: string;
  api_key_id: string;
  api_key_name: string;
  model: string;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  request_count: number;
  last_used: number;
}

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
        request_count: 1,
        last_used: row.created_at,
      });
    }
  }
  return [...deltas.values()];
}

// The raw table's columns (and their PostgreSQL types).
const RAW_COLUMNS = [
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
] as const satisfies readonly (readonly [keyof UsageRow, string])[];

/** SQLite: inserts raw rows, skipping ids already stored; returns the ids actually inserted. */
function insertRawRowsSqlite(
  rows: readonly UsageRow[],
  sqlite: SqliteDatabase.Database | undefined,
): string[] {
  // Kysely prepares every statement anew; one cached prepared single-row insert, run inside the
  // same connection's open transaction, is ~10x cheaper per row than a compiled 500-row VALUES.
  const insert = sqliteInsert(sqlite);
  const ids: string[] = [];
  for (const row of rows) {
    const values = RAW_COLUMNS.map(([column]) => row[column] ?? COLUMN_DEFAULTS[column] ?? null);
    if (insert.run(values).changes === 1) ids.push(row.id);
  }
  return ids;
}

const sqliteStatements = new WeakMap<SqliteDatabase.Database, SqliteDatabase.Statement<unknown[]>>();

function sqliteInsert(handle: SqliteDatabase.Database | undefined): SqliteDatabase.Statement<unknown[]> {
  if (!handle) throw new Error('SQLite usage ingest needs the better-sqlite3 handle (Db.sqlite)');
  let statement = sqliteStatements.get(handle);
  if (!statement) {
    const columns = RAW_COLUMNS.map(([column]) => column).join(', ');
    const params = RAW_COLUMNS.map(() => '?').join(', ');
    statement = handle.prepare<unknown[]>(
      `insert into usage_records (${columns}) values (${params}) on conflict (id) do nothing`,
    );
    sqliteStatements.set(handle, statement);
  }
  return statement;
}

/**
 * Inserts raw usage rows and adds them to the hourly rollups in one transaction. Idempotent: a row
 * whose id is already stored is skipped, and only rows actually inserted reach the rollups, so a
 * replayed batch never double-counts. Safe with several writers (`ON CONFLICT DO UPDATE` adds).
 * Returns the number of rows inserted.
 */
export async function insertUsageBatch(db: Db, rows: readonly UsageRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  if (db.dialect === 'postgres') return insertUsageBatchPostgres(db, rows);
  return db.kysely.transaction().execute(async (trx) => {
    const inserted: UsageRow[] = [];
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const id of insertRawRowsSqlite(rows, db.sqlite)) {
      const row = byId.get(id);
      if (row) inserted.push(row);
    }
    const deltas = aggregateRollupDeltas(inserted);
    for (let i = 0; i < deltas.length; i += ROLLUP_CHUNK) {
      await trx
        .insertInto('usage_rollups_hourly')
        .values(deltas.slice(i, i + ROLLUP_CHUNK))
        .onConflict((oc) =>
          oc
            .columns(['hour', 'user_id', 'source', 'api_key_id', 'model', 'user_name', 'api_key_name'])
            .doUpdateSet({
              prompt_tokens: sql`usage_rollups_hourly.prompt_tokens + excluded.prompt_tokens`,
              completion_tokens: sql`usage_rollups_hourly.completion_tokens + excluded.completion_tokens`,
              total_tokens: sql`usage_rollups_hourly.total_tokens + excluded.total_tokens`,
              request_count: sql`usage_rollups_hourly.request_count + excluded.request_count`,
              last_used: greatest(db.dialect, sql`usage_rollups_hourly.last_used`, sql`excluded.last_used`),
            }),
        )
        .execute();
    }
    return inserted.length;
  });
}

// The columns a row may omit, with their defaults (the raw table's own).
const COLUMN_DEFAULTS: Partial<Record<keyof UsageRow, string | number>> = {
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
};
const HOUR_OF = 'created_at - (((created_at % 3600000) + 3600000) % 3600000)';
const PG_RAW_SELECT = RAW_COLUMNS.map(([column]) => {
  const fallback = COLUMN_DEFAULTS[column];
  if (fallback === undefined) return column;
  return `coalesce(${column}, ${typeof fallback === 'number' ? fallback : `'${fallback}'`})`;
}).join(', ');
const PG_COLUMNS = RAW_COLUMNS.map(([column]) => column).join(', ');
const PG_ROLLUP_KEY = `${HOUR_OF}, user_id, user_name, source, coalesce(api_key_id, ''), api_key_name, model`;

/**
 * PostgreSQL: the whole batch is one statement with one JSON parameter. The server expands it
 * (json_populate_recordset), inserts the raw rows it does not have yet, and adds exactly those to
 * the hourly rollups, grouped in SQL. The event loop only serialises the rows once (native
 * JSON.stringify): building 17 arrays and a rollup statement with thousands of parameters in
 * JavaScript stalled every request in flight for several milliseconds per batch.
 */
async function insertUsageBatchPostgres(db: Db, rows: readonly UsageRow[]): Promise<number> {
  return db.kysely.transaction().execute(async (trx) => {
    let inserted = 0;
    for (let i = 0; i < rows.length; i += PG_CHUNK) {
      const json = JSON.stringify(i === 0 && rows.length <= PG_CHUNK ? rows : rows.slice(i, i + PG_CHUNK));
      const result = await sql<{ n: number }>`
        with given as (
          select ${sql.raw(PG_RAW_SELECT)}
          from json_populate_recordset(null::usage_records, ${json}::json)
        ), inserted as (
          insert into usage_records (${sql.raw(PG_COLUMNS)})
          select * from given
          on conflict (id) do nothing
          returning created_at, user_id, user_name, source, api_key_id, api_key_name, model,
            prompt_tokens, completion_tokens, total_tokens
        ), rolled as (
          insert into usage_rollups_hourly (hour, user_id, user_name, source, api_key_id, api_key_name,
            model, prompt_tokens, completion_tokens, total_tokens, request_count, last_used)
          select ${sql.raw(PG_ROLLUP_KEY)}, sum(prompt_tokens), sum(completion_tokens), sum(total_tokens),
            count(*), max(created_at)
          from inserted
          group by ${sql.raw(PG_ROLLUP_KEY)}
          on conflict (hour, user_id, source, api_key_id, model, user_name, api_key_name) do update set
            prompt_tokens = usage_rollups_hourly.prompt_tokens + excluded.prompt_tokens,
            completion_tokens = usage_rollups_hourly.completion_tokens + excluded.completion_tokens,
            total_tokens = usage_rollups_hourly.total_tokens + excluded.total_tokens,
            request_count = usage_rollups_hourly.request_count + excluded.request_count,
            last_used = greatest(usage_rollups_hourly.last_used, excluded.last_used)
          returning 1
        )
        select count(*)::int as n from inserted`.execute(trx);
      inserted += Number(result.rows[0]?.n ?? 0);
    }
    return inserted;
  });
}
