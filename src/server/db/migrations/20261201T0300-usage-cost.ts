import { type Kysely, sql } from 'kysely';

// Frozen once landed: later changes go in a new, later-named migration.
//
// Cost (decisions.md section 8): every raw usage row gains the token details that change a price
// (cached input, cache writes, reasoning; NULL when the upstream did not report them), its cost in
// integer nano-USD (NULL when no price is known) and where the price came from. The rollups sum the
// details and the cost, and count the unpriced requests, so every usage view can show cost exactly
// (integer sums) at the same price as tokens. The daily-rollup triggers of migration 0030 are
// replaced by ones that carry the new sums; their DDL is written out here for the reason 0030 gives.
// Admin prices get their own table, one row per version.

const DAY_MS = 86_400_000;

type MigrationDialect = 'sqlite' | 'postgres';

function dialectOf(db: Kysely<unknown>): MigrationDialect {
  return sql`select ${1}`.compile(db).sql.includes('$1') ? 'postgres' : 'sqlite';
}

const DETAIL_COLUMNS = ['cached_tokens', 'cache_write_tokens', 'reasoning_tokens'] as const;
/** What the rollups add up, beyond 0030's: the details, the cost, and the requests without a price. */
const NEW_SUMS = [...DETAIL_COLUMNS, 'cost_nanos', 'unpriced_count'] as const;
const SUMS = ['prompt_tokens', 'completion_tokens', 'total_tokens', 'request_count', ...NEW_SUMS];
const ROLLUP_TABLES = ['usage_rollups_hourly', 'usage_rollups_daily_sources', 'usage_rollups_daily_models'];

function propagate(row: 'NEW' | 'OLD', delta: (column: string) => string, lastUsed: string): string[] {
  const day = `${row}.hour - (${row}.hour % ${DAY_MS})`;
  const set = (table: string) =>
    [
      ...SUMS.map((column) => `${column} = ${table}.${column} + excluded.${column}`),
      `last_used = ${lastUsed.replace('$T', table)}`,
    ].join(', ');
  return [
    `insert into usage_rollups_daily_sources
       (day, user_id, user_name, source, api_key_id, api_key_name, ${SUMS.join(', ')}, last_used)
     values (${day}, ${row}.user_id, ${row}.user_name, ${row}.source, ${row}.api_key_id, ${row}.api_key_name,
        ${SUMS.map(delta).join(', ')}, ${row}.last_used)
     on conflict (day, user_id, source, api_key_id, user_name, api_key_name)
     do update set ${set('usage_rollups_daily_sources')}`,
    `insert into usage_rollups_daily_models
       (day, user_id, user_name, model, ${SUMS.join(', ')}, last_used)
     values (${day}, ${row}.user_id, ${row}.user_name, ${row}.model,
        ${SUMS.map(delta).join(', ')}, ${row}.last_used)
     on conflict (day, user_id, model, user_name)
     do update set ${set('usage_rollups_daily_models')}`,
  ];
}

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

/** The daily-rollup triggers with cost (exported for the bench, which drops triggers while seeding). */
export function costRollupTriggerStatements(dialect: MigrationDialect): string[] {
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

function dropTriggerStatements(dialect: MigrationDialect): string[] {
  if (dialect === 'sqlite') {
    return ['insert', 'update', 'delete'].map((op) => `drop trigger if exists usage_rollups_hourly_${op}`);
  }
  return ['drop trigger if exists usage_rollups_hourly_propagate on usage_rollups_hourly'];
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const dialect = dialectOf(db);
  for (const column of DETAIL_COLUMNS) {
    await db.schema.alterTable('usage_records').addColumn(column, 'bigint').execute();
  }
  await db.schema.alterTable('usage_records').addColumn('cost_nanos', 'bigint').execute();
  // Rows recorded before this migration have no price: 'none' (a reprice can price them).
  await db.schema
    .alterTable('usage_records')
    .addColumn('price_source', 'varchar(16)', (col) => col.notNull().defaultTo('none'))
    .execute();

  for (const statement of dropTriggerStatements(dialect)) await sql.raw(statement).execute(db);
  for (const table of ROLLUP_TABLES) {
    for (const column of NEW_SUMS) {
      await db.schema
        .alterTable(table)
        .addColumn(column, 'bigint', (col) => col.notNull().defaultTo(0))
        .execute();
    }
    // Every request counted so far is unpriced.
    await sql`update ${sql.table(table)} set unpriced_count = request_count`.execute(db);
  }
  for (const statement of costRollupTriggerStatements(dialect)) await sql.raw(statement).execute(db);

  await db.schema
    .createTable('prices')
    .ifNotExists()
    .addColumn('id', 'varchar(36)', (col) => col.primaryKey())
    /** An exact model name, or a glob with `*` (any run of characters) and `?` (one character). */
    .addColumn('model', 'varchar(255)', (col) => col.notNull())
    // Rates in micro-USD per million tokens, which is pico-USD per token: an integer that multiplies
    // a token count exactly (any price with up to 6 decimals in USD per million tokens).
    .addColumn('input_micros', 'bigint', (col) => col.notNull())
    .addColumn('output_micros', 'bigint', (col) => col.notNull())
    .addColumn('cached_input_micros', 'bigint')
    .addColumn('cache_write_micros', 'bigint')
    .addColumn('effective_from', 'bigint', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('created_by', 'varchar(255)', (col) => col.notNull())
    .execute();
  await db.schema.createIndex('idx_prices_model').ifNotExists().on('prices').columns(['model']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const dialect = dialectOf(db);
  await db.schema.dropTable('prices').ifExists().execute();
  for (const statement of dropTriggerStatements(dialect)) await sql.raw(statement).execute(db);
  for (const table of ROLLUP_TABLES) {
    for (const column of NEW_SUMS) await db.schema.alterTable(table).dropColumn(column).execute();
  }
  for (const column of [...DETAIL_COLUMNS, 'cost_nanos', 'price_source']) {
    await db.schema.alterTable('usage_records').dropColumn(column).execute();
  }
}
