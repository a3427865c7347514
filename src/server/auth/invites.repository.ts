import type { Db } from '../db/connection.ts';
import type { InviteRow } from '../db/schema.ts';

/** SQL for `invites`. `code_hash` is the HMAC of the code; the code is shown once. */

export async function insertInvite(db: Db, row: InviteRow): Promise<void> {
  await db.kysely.insertInto('invites').values(row).execute();
}

export async function listInvites(db: Db): Promise<InviteRow[]> {
  return db.kysely.selectFrom('invites').selectAll().orderBy('created_at', 'desc').execute();
}

export async function findInviteByHash(db: Db, codeHash: string): Promise<InviteRow | undefined> {
  return db.kysely.selectFrom('invites').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
}

/** Marks an unused, unexpired invite as used; false when someone else took it first. */
export async function consumeInvite(db: Db, id: string, userId: string, at: number): Promise<boolean> {
  const result = await db.kysely
    .updateTable('invites')
    .set({ used_by: userId, used_at: at })
    .where('id', '=', id)
    .where('used_by', 'is', null)
    .where('used_at', 'is', null)
    .where('expires_at', '>', at)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Deletes an unused invite; false when unknown or already used. */
export async function deleteUnusedInvite(db: Db, id: string): Promise<boolean> {
  const result = await db.kysely
    .deleteFrom('invites')
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
