import type { Kysely } from 'kysely';

// Frozen once landed: later changes go in a new, later-named migration.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('users')
    .ifNotExists()
    .addColumn('id', 'varchar(36)', (col) => col.primaryKey())
    .addColumn('email', 'varchar(255)', (col) => col.notNull())
    .addColumn('name', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    .addColumn('avatar_url', 'varchar(512)', (col) => col.notNull().defaultTo(''))
    .addColumn('provider', 'varchar(50)', (col) => col.notNull().defaultTo('local'))
    .addColumn('subject', 'varchar(255)', (col) => col.notNull())
    .addColumn('password_hash', 'text')
    .addColumn('role', 'varchar(20)', (col) => col.notNull().defaultTo('user'))
    .addColumn('status', 'varchar(20)', (col) => col.notNull().defaultTo('active'))
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute();
  await db.schema.createIndex('idx_users_email').ifNotExists().on('users').column('email').execute();
  await db.schema
    .createIndex('idx_users_provider_subject')
    .ifNotExists()
    .unique()
    .on('users')
    .columns(['provider', 'subject'])
    .execute();

  await db.schema
    .createTable('sessions')
    .ifNotExists()
    .addColumn('id', 'varchar(64)', (col) => col.primaryKey())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('expires_at', 'bigint', (col) => col.notNull())
    .addColumn('rotated_at', 'bigint', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .execute();
  await db.schema.createIndex('idx_sessions_user').ifNotExists().on('sessions').column('user_id').execute();
  await db.schema
    .createIndex('idx_sessions_expires')
    .ifNotExists()
    .on('sessions')
    .column('expires_at')
    .execute();

  await db.schema
    .createTable('api_keys')
    .ifNotExists()
    .addColumn('id', 'varchar(36)', (col) => col.primaryKey())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'varchar(255)', (col) => col.notNull())
    .addColumn('key_hash', 'varchar(64)', (col) => col.notNull().unique())
    .addColumn('key_prefix', 'varchar(12)', (col) => col.notNull())
    .addColumn('role', 'varchar(20)', (col) => col.notNull().defaultTo('user'))
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint')
    .addColumn('last_used', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('idx_api_keys_user').ifNotExists().on('api_keys').column('user_id').execute();
  await db.schema
    .createIndex('idx_api_keys_expires')
    .ifNotExists()
    .on('api_keys')
    .column('expires_at')
    .execute();

  await db.schema
    .createTable('invites')
    .ifNotExists()
    .addColumn('id', 'varchar(36)', (col) => col.primaryKey())
    .addColumn('code_hash', 'varchar(64)', (col) => col.notNull().unique())
    .addColumn('code_prefix', 'varchar(8)', (col) => col.notNull())
    .addColumn('created_by', 'varchar(36)', (col) => col.notNull())
    .addColumn('used_by', 'varchar(36)')
    .addColumn('used_at', 'bigint')
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint', (col) => col.notNull())
    .execute();

  // No foreign keys from usage to users or keys: accounting history outlives both (decisions.md §3).
  await db.schema
    .createTable('usage_records')
    .ifNotExists()
    .addColumn('id', 'varchar(40)', (col) => col.primaryKey())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull())
    .addColumn('user_name', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    .addColumn('source', 'varchar(16)', (col) => col.notNull().defaultTo(''))
    .addColumn('api_key_id', 'varchar(36)')
    .addColumn('api_key_name', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    .addColumn('model', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    .addColumn('endpoint', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    .addColumn('prompt_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('completion_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('total_tokens', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('duration_ms', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('usage_origin', 'varchar(16)', (col) => col.notNull().defaultTo('provider'))
    .addColumn('aborted', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('stream', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('upstream', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    .execute();
  await db.schema
    .createIndex('idx_usage_user_time')
    .ifNotExists()
    .on('usage_records')
    .columns(['user_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('idx_usage_time')
    .ifNotExists()
    .on('usage_records')
    .column('created_at')
    .execute();
  await db.schema
    .createIndex('idx_usage_source')
    .ifNotExists()
    .on('usage_records')
    .column('source')
    .execute();
  await db.schema
    .createIndex('idx_usage_apikey')
    .ifNotExists()
    .on('usage_records')
    .column('api_key_id')
    .execute();
  await db.schema.createIndex('idx_usage_model').ifNotExists().on('usage_records').column('model').execute();

  // One row per (hour, user, source, key, model, name snapshots): the usage endpoints read only this,
  // so their cost grows with keys × hours, not with requests.
  await db.schema
    .createTable('usage_rollups_hourly')
    .ifNotExists()
    .addColumn('hour', 'bigint', (col) => col.notNull())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull())
    .addColumn('user_name', 'varchar(255)', (col) => col.notNull())
    .addColumn('source', 'varchar(16)', (col) => col.notNull())
    .addColumn('api_key_id', 'varchar(36)', (col) => col.notNull())
    .addColumn('api_key_name', 'varchar(255)', (col) => col.notNull())
    .addColumn('model', 'varchar(255)', (col) => col.notNull())
    .addColumn('prompt_tokens', 'bigint', (col) => col.notNull())
    .addColumn('completion_tokens', 'bigint', (col) => col.notNull())
    .addColumn('total_tokens', 'bigint', (col) => col.notNull())
    .addColumn('request_count', 'bigint', (col) => col.notNull())
    .addColumn('last_used', 'bigint', (col) => col.notNull())
    .addPrimaryKeyConstraint('usage_rollups_hourly_pk', [
      'hour',
      'user_id',
      'source',
      'api_key_id',
      'model',
      'user_name',
      'api_key_name',
    ])
    .execute();
  await db.schema
    .createIndex('idx_rollups_user_hour')
    .ifNotExists()
    .on('usage_rollups_hourly')
    .columns(['user_id', 'hour'])
    .execute();
  await db.schema
    .createIndex('idx_rollups_key_hour')
    .ifNotExists()
    .on('usage_rollups_hourly')
    .columns(['api_key_id', 'hour'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['usage_rollups_hourly', 'usage_records', 'invites', 'api_keys', 'sessions', 'users']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
