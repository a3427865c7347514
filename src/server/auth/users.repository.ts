import type { Db } from '../db/connection.ts';
import type { NewUserRow, UserRow, UserUpdate } from '../db/schema.ts';

/** SQL for `users`. Emails are stored lowercased; callers normalise before calling. */

export async function findUserById(db: Db, id: string): Promise<UserRow | undefined> {
  return db.kysely.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findLocalUserByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  return db.kysely
    .selectFrom('users')
    .selectAll()
    .where('provider', '=', 'local')
    .where('subject', '=', email)
    .executeTakeFirst();
}

export async function findUserByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  return db.kysely
    .selectFrom('users')
    .selectAll()
    .where('email', '=', email)
    .orderBy('created_at', 'asc')
    .executeTakeFirst();
}

export async function countUsers(db: Db): Promise<number> {
  const row = await db.kysely
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function listUsers(db: Db): Promise<UserRow[]> {
  return db.kysely.selectFrom('users').selectAll().orderBy('created_at', 'asc').execute();
}

export async function insertUser(db: Db, row: NewUserRow): Promise<void> {
  await db.kysely.insertInto('users').values(row).execute();
}

export async function updateUser(db: Db, id: string, changes: UserUpdate): Promise<boolean> {
  const result = await db.kysely.updateTable('users').set(changes).where('id', '=', id).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Removes the account, its sessions, keys and invites it created; nulls `used_by` on invites it
 * consumed. Usage rows are kept (decisions.md section 3): they have no foreign key to users.
 */
export async function deleteUserCascade(db: Db, id: string): Promise<boolean> {
  return db.kysely.transaction().execute(async (trx) => {
    await trx.deleteFrom('invites').where('created_by', '=', id).execute();
    await trx.updateTable('invites').set({ used_by: null }).where('used_by', '=', id).execute();
    await trx.deleteFrom('sessions').where('user_id', '=', id).execute();
    await trx.deleteFrom('api_keys').where('user_id', '=', id).execute();
    await trx.deleteFrom('user_permissions').where('user_id', '=', id).execute();
    const result = await trx.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  });
}
