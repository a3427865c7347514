import type { Db } from '../../db/connection.ts';
import type { NewUserRow, UserIdentityRow, UserRow } from '../../db/schema.ts';

/** SQL for `user_identities` (single sign-on identities). */

export interface IdentityKey {
  provider: string;
  issuer: string;
  subject: string;
}

export async function findIdentity(
  db: Db,
  key: IdentityKey,
): Promise<{ identity: UserIdentityRow; user: UserRow } | undefined> {
  const identity = await db.kysely
    .selectFrom('user_identities')
    .selectAll()
    .where('provider', '=', key.provider)
    .where('issuer', '=', key.issuer)
    .where('subject', '=', key.subject)
    .executeTakeFirst();
  if (!identity) return undefined;
  const user = await db.kysely
    .selectFrom('users')
    .selectAll()
    .where('id', '=', identity.user_id)
    .executeTakeFirst();
  return user ? { identity, user } : undefined;
}

export async function listIdentitiesOfUser(db: Db, userId: string): Promise<UserIdentityRow[]> {
  return db.kysely
    .selectFrom('user_identities')
    .selectAll()
    .where('user_id', '=', userId)
    .orderBy('created_at', 'asc')
    .execute();
}

export async function insertIdentity(db: Db, row: UserIdentityRow): Promise<void> {
  await db.kysely.insertInto('user_identities').values(row).execute();
}

/** A new account and its first identity, together or not at all. */
export async function insertUserWithIdentity(
  db: Db,
  user: NewUserRow,
  identity: UserIdentityRow,
): Promise<void> {
  await db.kysely.transaction().execute(async (trx) => {
    await trx.insertInto('users').values(user).execute();
    await trx.insertInto('user_identities').values(identity).execute();
  });
}

export async function updateIdentity(
  db: Db,
  id: string,
  changes: Pick<UserIdentityRow, 'email' | 'name' | 'avatar_url' | 'last_login_at'>,
): Promise<void> {
  await db.kysely.updateTable('user_identities').set(changes).where('id', '=', id).execute();
}

export async function countAdmins(db: Db): Promise<number> {
  const row = await db.kysely
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('role', '=', 'admin')
    .executeTakeFirstOrThrow();
  return Number(row.count);
}
