import type { Db } from '../db/connection.ts';
import type { SessionRow } from '../db/schema.ts';

/** SQL for `sessions`. `id` is the HMAC of the token; the token itself never reaches this file. */

export async function insertSession(db: Db, row: SessionRow): Promise<void> {
  await db.kysely.insertInto('sessions').values(row).execute();
}

export async function findSessionById(db: Db, id: string): Promise<SessionRow | undefined> {
  return db.kysely.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function deleteSession(db: Db, id: string): Promise<void> {
  await db.kysely.deleteFrom('sessions').where('id', '=', id).execute();
}

export async function deleteSessionsOfUser(db: Db, userId: string): Promise<number> {
  const result = await db.kysely.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Rotates a session: inserts `next` (same expiry) and lets the old id live only until
 * `oldExpiresAt` (a short grace), in one transaction. The update is a compare-and-set on `rotated_at`, so of several
 * concurrent requests carrying the old token exactly one rotates; false for the others.
 */
export async function rotateSessionRow(
  db: Db,
  oldId: string,
  next: SessionRow,
  rotatedBefore: number,
  oldExpiresAt: number,
): Promise<boolean> {
  return db.kysely.transaction().execute(async (trx) => {
    const result = await trx
      .updateTable('sessions')
      .set({ rotated_at: next.rotated_at, expires_at: oldExpiresAt })
      .where('id', '=', oldId)
      .where('rotated_at', '<=', rotatedBefore)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return false;
    await trx.insertInto('sessions').values(next).execute();
    return true;
  });
}

export async function deleteExpiredSessions(db: Db, now: number): Promise<number> {
  const result = await db.kysely.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
