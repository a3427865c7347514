import { type Kysely, sql } from 'kysely';
import { dropDailyRollupTriggerStatements } from './20261128T0030-usage-daily-rollups.ts';
import {
  dayVersionTriggerStatements,
  dropDayVersionTriggerStatements,
} from './20261128T0031-usage-day-versions.ts';
import { costRollupTriggerStatements } from './20261201T0300-usage-cost.ts';

// Frozen once landed: later changes go in a new, later-named migration.
//
// PostgreSQL only (SQLite keeps its row triggers: it has no statement triggers with transition
// tables). The daily rollups (0030, 0300) and the day versions (0031) were kept by row triggers on
// the hourly table: a recorder batch of 1,000 rows updates ~100 hourly rows, and each fired three
// single-row upserts, 300 statements, the same day's version row updated 100 times. EXPLAIN ANALYZE
// of one batch (bench/proxy, the recorder's row mix): the two row triggers took 13.6 of the
// statement's 35.5 ms. Statement triggers with transition tables do the same work set-wise: one
// upsert per daily table and one version bump per day, per statement. Every writer of the hourly
// table (ingest, backfill, reprice, retention) still keeps the daily tables consistent without
// knowing. Rows are upserted in key order, so concurrent writers (several instances) take the
// daily rows' locks in the same order.

const DAY_MS = 86_400_000;

type MigrationDialect = 'sqlite' | 'postgres';

function dialectOf(db: Kysely<unknown>): MigrationDialect {
  return sql`select ${1}`.compile(db).sql.includes('$1') ? 'postgres' : 'sqlite';
}

const SUMS = [
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'request_count',
  'cached_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'cost_nanos',
  'unpriced_count',
];
const KEY = ['hour', 'user_id', 'user_name', 'source', 'api_key_id', 'api_key_name', 'model'];

type Op = 'insert' | 'update' | 'delete';

/** The rows of a transition table, their sums signed; `lastUsed` is what they give a daily row. */
function signed(table: 'new_rows' | 'old_rows', sign: '' | '-', lastUsed: string): string {
  const sums = SUMS.map((column) => `${sign}${column} as ${column}`);
  return `select ${[...KEY, ...sums, `${lastUsed} as last_used`].join(', ')} from ${table}`;
}

/**
 * The changed hourly rows as signed deltas: the new rows added, the old ones subtracted. A removed
 * row's last_used only goes to a daily row the delete would create (an existing one keeps its own).
 */
function deltas(op: Op): string {
  if (op === 'insert') return signed('new_rows', '', 'last_used');
  if (op === 'delete') return signed('old_rows', '-', 'last_used');
  return `${signed('new_rows', '', 'last_used')} union all ${signed('old_rows', '-', 'null::bigint')}`;
}

/** Adds the deltas to a daily table, on conflict with its primary key (named by migration 0030). */
function upsertDaily(op: Op, table: string, columns: string[]): string {
  const day = `hour - (hour % ${DAY_MS})`;
  const lastUsed =
    op === 'delete' ? `${table}.last_used` : `greatest(${table}.last_used, excluded.last_used)`;
  const groups = columns.map((_, i) => String(i + 2)).join(', ');
  return `insert into ${table} (day, ${columns.join(', ')}, ${SUMS.join(', ')}, last_used)
    select ${day}, ${columns.join(', ')}, ${SUMS.map((column) => `sum(${column})::bigint`).join(', ')},
      coalesce(max(last_used), 0)
    from (${deltas(op)}) as delta
    group by 1, ${groups}
    order by 1, ${groups}
    on conflict on constraint ${table}_pk do update set
      ${[...SUMS.map((column) => `${column} = ${table}.${column} + excluded.${column}`), `last_used = ${lastUsed}`].join(',\n      ')}`;
}

const SOURCES = ['user_id', 'user_name', 'source', 'api_key_id', 'api_key_name'];
const MODELS = ['user_id', 'user_name', 'model'];

function body(op: Op): string[] {
  const rows = op === 'delete' ? 'old_rows' : 'new_rows';
  const statements = [
    upsertDaily(op, 'usage_rollups_daily_sources', SOURCES),
    upsertDaily(op, 'usage_rollups_daily_models', MODELS),
    `insert into usage_rollup_day_versions (day, version)
      select distinct hour - (hour % ${DAY_MS}), 1 from ${rows} order by 1
      on conflict (day) do update set version = usage_rollup_day_versions.version + 1`,
  ];
  if (op === 'delete') {
    // A daily row left with no requests is removed (as 0030's row trigger did).
    statements.push(
      `delete from usage_rollups_daily_sources d using (select distinct hour - (hour % ${DAY_MS}) as day, ${SOURCES.join(', ')} from old_rows) o
        where d.request_count <= 0 and d.day = o.day ${SOURCES.map((c) => `and d.${c} = o.${c}`).join(' ')}`,
      `delete from usage_rollups_daily_models d using (select distinct hour - (hour % ${DAY_MS}) as day, ${MODELS.join(', ')} from old_rows) o
        where d.request_count <= 0 and d.day = o.day ${MODELS.map((c) => `and d.${c} = o.${c}`).join(' ')}`,
    );
  }
  return statements;
}

const REFERENCING: Record<Op, string> = {
  insert: 'referencing new table as new_rows',
  update: 'referencing old table as old_rows new table as new_rows',
  delete: 'referencing old table as old_rows',
};

const OPS: Op[] = ['insert', 'update', 'delete'];

/** PostgreSQL's statement triggers (exported for the bench, which drops triggers while seeding). */
export function statementRollupTriggerStatements(): string[] {
  return OPS.flatMap((op) => [
    `create or replace function usage_rollups_hourly_${op}_stmt() returns trigger language plpgsql as $fn$
     begin
       ${body(op)
         .map((statement) => `${statement};`)
         .join('\n')}
       return null;
     end $fn$`,
    `create trigger usage_rollups_hourly_${op}_stmt after ${op} on usage_rollups_hourly
     ${REFERENCING[op]} for each statement execute function usage_rollups_hourly_${op}_stmt()`,
  ]);
}

export function dropStatementRollupTriggerStatements(): string[] {
  return OPS.map((op) => `drop trigger if exists usage_rollups_hourly_${op}_stmt on usage_rollups_hourly`);
}

/** The row triggers of migrations 0300 (daily rollups with cost) and 0031 (day versions). */
function rowTriggerStatements(dialect: MigrationDialect): string[] {
  return [...costRollupTriggerStatements(dialect), ...dayVersionTriggerStatements(dialect)];
}

function dropRowTriggerStatements(dialect: MigrationDialect): string[] {
  return [...dropDailyRollupTriggerStatements(dialect), ...dropDayVersionTriggerStatements(dialect)];
}

/** Every trigger that keeps the daily rollups and day versions, as of this migration (for the bench's seeding). */
export function rollupTriggerStatements(dialect: MigrationDialect): string[] {
  return dialect === 'postgres' ? statementRollupTriggerStatements() : rowTriggerStatements(dialect);
}

export function dropRollupTriggerStatements(dialect: MigrationDialect): string[] {
  if (dialect === 'postgres')
    return [...dropRowTriggerStatements(dialect), ...dropStatementRollupTriggerStatements()];
  return dropRowTriggerStatements(dialect);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) !== 'postgres') return;
  for (const statement of [...dropRowTriggerStatements('postgres'), ...statementRollupTriggerStatements()])
    await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) !== 'postgres') return;
  for (const statement of dropStatementRollupTriggerStatements()) await sql.raw(statement).execute(db);
  for (const op of OPS)
    await sql.raw(`drop function if exists usage_rollups_hourly_${op}_stmt()`).execute(db);
  for (const statement of rowTriggerStatements('postgres')) await sql.raw(statement).execute(db);
}
