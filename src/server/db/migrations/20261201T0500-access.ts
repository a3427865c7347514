import type { Kysely } from 'kysely';

// Frozen once landed: later changes go in a new, later-named migration.
//
// Access (issue 14): key scopes, per-key model and IP allowlists, rotation with a grace period,
// disable without revoking, and LocalAI's per-user permissions (localai-reference-control.md 2.1).
// Keys that exist before this migration get the scope `all`: nothing deployed loses a right
// (decisions.md section 9). Lists are JSON text, the same on both databases.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('api_keys')
    .addColumn('scopes', 'varchar(64)', (col) => col.notNull().defaultTo('all'))
    .execute();
  await db.schema.alterTable('api_keys').addColumn('allowed_models', 'text').execute();
  await db.schema.alterTable('api_keys').addColumn('allowed_ips', 'text').execute();
  await db.schema.alterTable('api_keys').addColumn('disabled_at', 'bigint').execute();
  // The secret a rotation replaced, valid until previous_expires_at (one previous secret at most).
  await db.schema.alterTable('api_keys').addColumn('previous_key_hash', 'varchar(64)').execute();
  await db.schema.alterTable('api_keys').addColumn('previous_expires_at', 'bigint').execute();
  await db.schema
    .createIndex('idx_api_keys_previous_hash')
    .ifNotExists()
    .on('api_keys')
    .column('previous_key_hash')
    .execute();

  await db.schema
    .createTable('user_permissions')
    .ifNotExists()
    .addColumn('user_id', 'varchar(36)', (col) => col.primaryKey().references('users.id').onDelete('cascade'))
    // {"chat":false,...}; unknown keys are refused on write, so the map holds feature keys only
    .addColumn('permissions', 'text', (col) => col.notNull().defaultTo('{}'))
    // {"enabled":bool,"models":[...]}
    .addColumn('allowed_models', 'text', (col) => col.notNull().defaultTo('{"enabled":false}'))
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('user_permissions').ifExists().execute();
  await db.schema.dropIndex('idx_api_keys_previous_hash').ifExists().execute();
  for (const column of [
    'previous_expires_at',
    'previous_key_hash',
    'disabled_at',
    'allowed_ips',
    'allowed_models',
    'scopes',
  ]) {
    await db.schema.alterTable('api_keys').dropColumn(column).execute();
  }
}
