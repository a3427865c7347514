import { type Kysely, sql } from 'kysely';

// Frozen once landed: later changes go in a new, later-named migration.
//
// Why daily rollups: the hourly rollup is keyed by (hour, user, source, key, model, names). With many
// keys and models it barely compresses (1,000 keys × 20 models seeing 4,600 requests an hour give
// ~4,100 rollup rows an hour), so a 30-day query would still read ~3 M rows. The usage endpoints need
// either the model dimension (usage) or the key dimension (sources), never both at day or month
// granularity, so two daily tables, each without the other's dimension, hold ~1,200 and ~4,000 rows
// a day. They are maintained by triggers on the hourly table, in the same transaction as every
// write to it, so every writer (ingest, backfill, imports) keeps them consistent without knowing.
//
// The trigger DDL is dialect-specific and written out here rather than in db/dialect.ts because a
// landed migration must never change when a shared helper does.

const DAY_MS = 86_400_000;

type MigrationDialect = 'sqlite' | 'postgres';

/** PostgreSQL compiles parameters as $1, SQLite as ?: a public, side-effect-free way to tell them apart. */
function dialectOf(db: Kysely<unknown>): MigrationDialect {
  return sql`select ${1}`.compile(db).sql.includes('$1') ? 'postgres' : 'sqlite';
}

/** The statements of one propagation, for a row alias (NEW / OLD) and a sign (+1 add, -1 remove). */
function propagate(row: 'NEW' | 'OLD', delta: (column: string) => string, lastUsed: string): string[] {
  const day = `${row}.hour - (${row}.hour % ${DAY_MS})`;
  const sums = ['prompt_tokens', 'completion_tokens', 'total_tokens', 'request_count'];
  const set = (table: string) =>
    [
      ...sums.map((column) => `${column} = ${table}.${column} + excluded.${column}`),
      `last_used = ${lastUsed.replace('$T', table)}`,
    ].join(', ');
  return [
    `insert into usage_rollups_daily_sources
       (day, user_id, user_name, source, api_key_id, api_key_name,
        prompt_tokens, completion_tokens, total_tokens, request_count, last_used)
     values (${day}, ${row}.user_id, ${row}.user_name, ${row}.source, ${row}.api_key_id, ${row}.api_key_name,
        ${sums.map(delta).join(', ')}, ${row}.last_used)
     on conflict (day, user_id, source, api_key_id, user_name, api_key_name)
     do update set ${set('usage_rollups_daily_sources')}`,
    `insert into usage_rollups_daily_models
       (day, user_id, user_name, model,
        prompt_tokens, completion_tokens, total_tokens, request_count, last_used)
     values (${day}, ${row}.user_id, ${row}.user_name, ${row}.model,
        ${sums.map(delta).join(', ')}, ${row}.last_used)
     on conflict (day, user_id, model, user_name)
     do update set ${set('usage_rollups_daily_models')}`,
  ];
}

/**
 * Hourly rows are only ever inserted, updated by adding counts (key columns unchanged), or deleted
 * (the source backfill rebuilds whole hours, then recomputes the affected days exactly).
 * A delete subtracts; a daily row left with no requests is removed.
 */
function triggerBodies(dialect: MigrationDialect): { insert: string[]; update: string[]; delete: string[] } {
  const max = dialect === 'sqlite' ? 'max' : 'greatest';
  const keepMax = `${max}($T.last_used, excluded.last_used)`;
  return {
    insert: propagate('NEW', (column) => `NEW.${column}`, keepMax),
    update: propagate('NEW', (column) => `NEW.${column} - OLD.${column}`, keepMax),
    delete: [
      ...propagate('OLD', (column) => `-OLD.${column}`, '$T.last_used'),
      `delete from usage_rollups_daily_sources where request_count <= 0
         and day = OLD.hour - (OLD.hour % ${DAY_MS}) and user_id = OLD.user_id and source = OLD.source
         and api_key_id = OLD.api_key_id and user_name = OLD.user_name and api_key_name = OLD.api_key_name`,
      `delete from usage_rollups_daily_models where request_count <= 0
         and day = OLD.hour - (OLD.hour % ${DAY_MS}) and user_id = OLD.user_id and model = OLD.model
         and user_name = OLD.user_name`,
    ],
  };
}

/** The trigger DDL for a dialect (exported for the bench, which drops triggers while bulk-seeding). */
export function dailyRollupTriggerStatements(dialect: MigrationDialect): string[] {
  const bodies = triggerBodies(dialect);
  if (dialect === 'sqlite') {
    return (['insert', 'update', 'delete'] as const).map(
      (op) =>
        `create trigger if not exists usage_rollups_hourly_${op} after ${op} on usage_rollups_hourly
         begin ${bodies[op].map((statement) => `${statement};`).join('\n')} end`,
    );
  }
  const branch = (op: 'insert' | 'update' | 'delete') => bodies[op].map((s) => `${s};`).join('\n');
  return [
    `create or replace function usage_rollups_hourly_propagate() returns trigger language plpgsql as $fn$
     begin
       if tg_op = 'INSERT' then ${branch('insert')}
       elsif tg_op = 'UPDATE' then ${branch('update')}
       else ${branch('delete')}
       end if;
       return null;
     end $fn$`,
    `create trigger usage_rollups_hourly_propagate after insert or update or delete on usage_rollups_hourly
     for each row execute function usage_rollups_hourly_propagate()`,
  ];
}

export function dropDailyRollupTriggerStatements(dialect: MigrationDialect): string[] {
  if (dialect === 'sqlite') {
    return ['insert', 'update', 'delete'].map((op) => `drop trigger if exists usage_rollups_hourly_${op}`);
  }
  return ['drop trigger if exists usage_rollups_hourly_propagate on usage_rollups_hourly'];
}

/** Fills both (empty) daily tables from the hourly one. */
export function rebuildDailyRollupStatements(): string[] {
  const sums = `sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(request_count), max(last_used)`;
  const day = `hour - (hour % ${DAY_MS})`;
  return [
    `insert into usage_rollups_daily_sources
       (day, user_id, user_name, source, api_key_id, api_key_name,
        prompt_tokens, completion_tokens, total_tokens, request_count, last_used)
     select ${day}, user_id, user_name, source, api_key_id, api_key_name, ${sums}
     from usage_rollups_hourly group by ${day}, user_id, user_name, source, api_key_id, api_key_name`,
    `insert into usage_rollups_daily_models
       (day, user_id, user_name, model, prompt_tokens, completion_tokens, total_tokens, request_count, last_used)
     select ${day}, user_id, user_name, model, ${sums}
     from usage_rollups_hourly group by ${day}, user_id, user_name, model`,
  ];
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const dialect = dialectOf(db);
  await db.schema
    .createTable('usage_rollups_daily_sources')
    .ifNotExists()
    .addColumn('day', 'bigint', (col) => col.notNull())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull())
    .addColumn('user_name', 'varchar(255)', (col) => col.notNull())
    .addColumn('source', 'varchar(16)', (col) => col.notNull())
    .addColumn('api_key_id', 'varchar(36)', (col) => col.notNull())
    .addColumn('api_key_name', 'varchar(255)', (col) => col.notNull())
    .addColumn('prompt_tokens', 'bigint', (col) => col.notNull())
    .addColumn('completion_tokens', 'bigint', (col) => col.notNull())
    .addColumn('total_tokens', 'bigint', (col) => col.notNull())
    .addColumn('request_count', 'bigint', (col) => col.notNull())
    .addColumn('last_used', 'bigint', (col) => col.notNull())
    .addPrimaryKeyConstraint('usage_rollups_daily_sources_pk', [
      'day',
      'user_id',
      'source',
      'api_key_id',
      'user_name',
      'api_key_name',
    ])
    .execute();
  await db.schema
    .createIndex('idx_daily_sources_user_day')
    .ifNotExists()
    .on('usage_rollups_daily_sources')
    .columns(['user_id', 'day'])
    .execute();
  await db.schema
    .createIndex('idx_daily_sources_key_day')
    .ifNotExists()
    .on('usage_rollups_daily_sources')
    .columns(['api_key_id', 'day'])
    .execute();

  await db.schema
    .createTable('usage_rollups_daily_models')
    .ifNotExists()
    .addColumn('day', 'bigint', (col) => col.notNull())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull())
    .addColumn('user_name', 'varchar(255)', (col) => col.notNull())
    .addColumn('model', 'varchar(255)', (col) => col.notNull())
    .addColumn('prompt_tokens', 'bigint', (col) => col.notNull())
    .addColumn('completion_tokens', 'bigint', (col) => col.notNull())
    .addColumn('total_tokens', 'bigint', (col) => col.notNull())
    .addColumn('request_count', 'bigint', (col) => col.notNull())
    .addColumn('last_used', 'bigint', (col) => col.notNull())
    .addPrimaryKeyConstraint('usage_rollups_daily_models_pk', ['day', 'user_id', 'model', 'user_name'])
    .execute();
  await db.schema
    .createIndex('idx_daily_models_user_day')
    .ifNotExists()
    .on('usage_rollups_daily_models')
    .columns(['user_id', 'day'])
    .execute();

  // Hourly rollups written before this migration.
  for (const statement of rebuildDailyRollupStatements()) await sql.raw(statement).execute(db);
  for (const statement of dailyRollupTriggerStatements(dialect)) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const dialect = dialectOf(db);
  for (const statement of dropDailyRollupTriggerStatements(dialect)) await sql.raw(statement).execute(db);
  if (dialect === 'postgres')
    await sql.raw('drop function if exists usage_rollups_hourly_propagate()').execute(db);
  await db.schema.dropTable('usage_rollups_daily_models').ifExists().execute();
  await db.schema.dropTable('usage_rollups_daily_sources').ifExists().execute();
}
