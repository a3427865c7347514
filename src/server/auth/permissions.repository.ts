import type { Db } from '../db/connection.ts';
import type { UserPermissionsRow } from '../db/schema.ts';

/** SQL for `user_permissions`. Reads never insert (LocalAI creates a row on every GET). */

export async function findUserPermissions(db: Db, userId: string): Promise<UserPermissionsRow | undefined> {
  return db.kysely
    .selectFrom('user_permissions')
    .selectAll()
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

export async function listUserPermissions(db: Db): Promise<UserPermissionsRow[]> {
  return db.kysely.selectFrom('user_permissions').selectAll().execute();
}

/** Replaces one column of the user's row, creating the row with the other column's default. */
export async function upsertUserPermissions(
  db: Db,
  userId: string,
  changes: { permissions?: string; allowed_models?: string },
  now: number,
): Promise<void> {
  await db.kysely
    .insertInto('user_permissions')
    .values({
      user_id: userId,
      permissions: changes.permissions ?? '{}',
      allowed_models: changes.allowed_models ?? '{"enabled":false}',
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ ...changes, updated_at: now }))
    .execute();
}
