import type SqliteDatabase from 'better-sqlite3';
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/connection.ts';
import { type DialectName, greatest, hourStart } from '../db/dialect.ts';
import type { Database, NewUsageRecordRow } from '../db/schema.ts';

export type UsageRow = NewUsageRecordRow;

const ROLLUP_CHUNK = 1000;
// Rows per unnest() statement on PostgreSQL (bounded so a huge seed does not build huge arrays).
const UNNEST_CHUNK = 10_000;

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

// Column → PostgreSQL array type, for the unnest() bulk insert.
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

/** Inserts raw rows, skipping ids already stored; returns the ids actually inserted. */
async function insertRawRows(
  dialect: DialectName,
  trx: Transaction<Database>,
  rows: readonly UsageRow[],
  sqlite: SqliteDatabase.Database | undefined,
) {
  const ids: string[] = [];
  switch (dialect) {
    case 'postgres': {
      // One statement with 17 array parameters instead of 17 parameters per row: measured 2.5x
      // faster for 5,000 rows (PostgreSQL parses and binds 17 values, not 85,000).
      const columns = sql.join(RAW_COLUMNS.map(([column]) => sql.ref(column)));
      for (let i = 0; i < rows.length; i += UNNEST_CHUNK) {
        const chunk = rows.slice(i, i + UNNEST_CHUNK);
        const arrays = sql.join(
          RAW_COLUMNS.map(
            ([column, type]) => sql`${chunk.map((row) => row[column] ?? null)}::${sql.raw(type)}[]`,
          ),
        );
        const result = await sql<{ id: string }>`insert into usage_records (${columns})
          select * from unnest(${arrays}) on conflict (id) do nothing returning id`.execute(trx);
        for (const { id } of result.rows) ids.push(id);
      }
      return ids;
    }
    case 'sqlite': {
      // Kysely prepares every statement anew; one cached prepared single-row insert, run inside the
      // same connection's open transaction, is ~10x cheaper per row than a compiled 500-row VALUES.
      const insert = sqliteInsert(sqlite);
      for (const row of rows) {
        if (insert.run(RAW_COLUMNS.map(([column]) => row[column] ?? null)).changes === 1) ids.push(row.id);
      }
      return ids;
    }
  }
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
  return db.kysely.transaction().execute(async (trx) => {
    const inserted: UsageRow[] = [];
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const id of await insertRawRows(db.dialect, trx, rows, db.sqlite)) {
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
