import { type Kysely, sql } from 'kysely';

// Frozen once landed: later changes go in a new, later-named migration.
//
// A version per UTC day, bumped (by a trigger, in the writer's transaction) whenever any hourly
// rollup row of that day is inserted, updated or deleted. The usage service caches the rendered
// admin Sources answer per day and reuses a day's part while its version is unchanged: a 30-day
// answer with 1,000 keys has ~36,000 buckets (8 MB of JSON), and only today's part changes under
// live traffic. Dialect-specific trigger DDL is written out here (see migration 0030 for why).

const DAY_MS = 86_400_000;

type MigrationDialect = 'sqlite' | 'postgres';

function dialectOf(db: Kysely<unknown>): MigrationDialect {
  return sql`select ${1}`.compile(db).sql.includes('$1') ? 'postgres' : 'sqlite';
}

function bump(row: 'NEW' | 'OLD'): string {
  return `insert into usage_rollup_day_versions (day, version)
     values (${row}.hour - (${row}.hour % ${DAY_MS}), 1)
     on conflict (day) do update set version = usage_rollup_day_versions.version + 1`;
}

/** The version triggers for a dialect (exported for the bench, which drops triggers while seeding). */
export function dayVersionTriggerStatements(dialect: MigrationDialect): string[] {
  if (dialect === 'sqlite') {
    return (['insert', 'update', 'delete'] as const).map(
      (op) =>
        `create trigger if not exists usage_rollup_day_version_${op} after ${op} on usage_rollups_hourly
         begin ${bump(op === 'delete' ? 'OLD' : 'NEW')}; end`,
    );
  }
  return [
    `create or replace function usage_rollup_day_version_bump() returns trigger language plpgsql as $fn$
     begin
       if tg_op = 'DELETE' then ${bump('OLD')};
       else ${bump('NEW')};
       end if;
       return null;
     end $fn$`,
    `create trigger usage_rollup_day_version_bump after insert or update or delete on usage_rollups_hourly
     for each row execute function usage_rollup_day_version_bump()`,
  ];
}

export function dropDayVersionTriggerStatements(dialect: MigrationDialect): string[] {
  if (dialect === 'sqlite') {
    return ['insert', 'update', 'delete'].map(
      (op) => `drop trigger if exists usage_rollup_day_version_${op}`,
    );
  }
  return ['drop trigger if exists usage_rollup_day_version_bump on usage_rollups_hourly'];
}

/** Gives every day that has rollups a version (after a bulk load with the triggers off). */
export const SEED_DAY_VERSIONS = `insert into usage_rollup_day_versions (day, version)
  select distinct hour - (hour % ${DAY_MS}), 1 from usage_rollups_hourly where true
  on conflict (day) do update set version = usage_rollup_day_versions.version + 1`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('usage_rollup_day_versions')
    .ifNotExists()
    .addColumn('day', 'bigint', (col) => col.primaryKey())
    .addColumn('version', 'bigint', (col) => col.notNull())
    .execute();
  await sql.raw(SEED_DAY_VERSIONS).execute(db);
  for (const statement of dayVersionTriggerStatements(dialectOf(db))) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const dialect = dialectOf(db);
  for (const statement of dropDayVersionTriggerStatements(dialect)) await sql.raw(statement).execute(db);
  if (dialect === 'postgres')
    await sql.raw('drop function if exists usage_rollup_day_version_bump()').execute(db);
  await db.schema.dropTable('usage_rollup_day_versions').ifExists().execute();
}
