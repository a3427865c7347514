import type { Kysely } from 'kysely';

// Frozen once landed: later changes go in a new, later-named migration.
//
// Single sign-on identities (decisions.md section 10). Keyed by (provider, issuer, subject): the
// reference keys accounts on (provider, sub) alone, so pointing it at another issuer maps that
// issuer's subjects onto existing accounts. A separate table (not columns on `users`) lets a local
// account carry a linked identity while keeping its password.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('user_identities')
    .ifNotExists()
    .addColumn('id', 'varchar(36)', (col) => col.primaryKey())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('provider', 'varchar(50)', (col) => col.notNull())
    .addColumn('issuer', 'varchar(255)', (col) => col.notNull())
    .addColumn('subject', 'varchar(255)', (col) => col.notNull())
    // The verified email last seen ('' when the provider sent none that is verified).
    .addColumn('email', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    // What the provider last said: a user's own name or avatar edit is kept when it differs.
    .addColumn('name', 'varchar(255)', (col) => col.notNull().defaultTo(''))
    .addColumn('avatar_url', 'varchar(512)', (col) => col.notNull().defaultTo(''))
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('last_login_at', 'bigint', (col) => col.notNull())
    .execute();
  await db.schema
    .createIndex('idx_user_identities_key')
    .ifNotExists()
    .unique()
    .on('user_identities')
    .columns(['provider', 'issuer', 'subject'])
    .execute();
  await db.schema
    .createIndex('idx_user_identities_user')
    .ifNotExists()
    .on('user_identities')
    .column('user_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('user_identities').ifExists().execute();
}
