import type { Kysely } from 'kysely';

// Frozen once landed: later changes go in a new, later-named migration.
//
// Limits (issue #13): LocalAI's per-user quota rules, keytally's per-key limits, the admin's policy
// for new keys, the leases instances take from a shared budget (PostgreSQL) and the 429s per key.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('quota_rules')
    .ifNotExists()
    .addColumn('id', 'varchar(36)', (col) => col.primaryKey())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('model', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    .addColumn('max_requests', 'bigint')
    .addColumn('max_total_tokens', 'bigint')
    .addColumn('window_seconds', 'bigint', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute();
  await db.schema
    .createIndex('idx_quota_user_model')
    .ifNotExists()
    .unique()
    .on('quota_rules')
    .columns(['user_id', 'model'])
    .execute();

  await db.schema
    .createTable('api_key_limits')
    .ifNotExists()
    .addColumn('api_key_id', 'varchar(36)', (col) =>
      col.primaryKey().references('api_keys.id').onDelete('cascade'),
    )
    .addColumn('rpm', 'bigint')
    .addColumn('tpm', 'bigint')
    .addColumn('max_parallel', 'bigint')
    .addColumn('token_budget', 'bigint')
    .addColumn('usd_budget_nanos', 'bigint')
    .addColumn('budget_window', 'varchar(10)', (col) => col.notNull().defaultTo('month'))
    .addColumn('soft_threshold', 'integer')
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute();

  // Per-user budgets (all of a user's traffic: every key, the web UI).
  await db.schema
    .createTable('user_limits')
    .ifNotExists()
    .addColumn('user_id', 'varchar(36)', (col) => col.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('token_budget', 'bigint')
    .addColumn('usd_budget_nanos', 'bigint')
    .addColumn('budget_window', 'varchar(10)', (col) => col.notNull().defaultTo('month'))
    .addColumn('soft_threshold', 'integer')
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute();

  // One row per policy name ('keys'); the value is the JSON of KeyLimitPolicy.
  await db.schema
    .createTable('limit_policies')
    .ifNotExists()
    .addColumn('name', 'varchar(36)', (col) => col.primaryKey())
    .addColumn('value', 'text', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute();

  // What instances have taken from a budget in its current window (leases.ts).
  await db.schema
    .createTable('limit_leases')
    .ifNotExists()
    .addColumn('meter', 'varchar(100)', (col) => col.primaryKey())
    .addColumn('window_start', 'bigint', (col) => col.notNull())
    .addColumn('granted', 'bigint', (col) => col.notNull())
    .addColumn('last_take', 'bigint', (col) => col.notNull().defaultTo(0))
    .execute();

  // 429s are not usage rows; they are counted per key and hour here.
  await db.schema
    .createTable('api_key_rejections')
    .ifNotExists()
    .addColumn('api_key_id', 'varchar(36)', (col) => col.notNull())
    .addColumn('hour', 'bigint', (col) => col.notNull())
    .addColumn('count', 'bigint', (col) => col.notNull())
    .addPrimaryKeyConstraint('api_key_rejections_pk', ['api_key_id', 'hour'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'api_key_rejections',
    'limit_leases',
    'limit_policies',
    'api_key_limits',
    'quota_rules',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
