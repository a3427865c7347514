import type { Updateable } from 'kysely';
import type { Db } from '../db/connection.ts';
import type { ApiKeyRow, ApiKeysTable, NewApiKeyRow } from '../db/schema.ts';

/** SQL for `api_keys`. Only the HMAC and the 12-character prefix of a key are ever stored. */

export async function insertApiKey(db: Db, row: NewApiKeyRow): Promise<void> {
  await db.kysely.insertInto('api_keys').values(row).execute();
}

export async function findApiKeyByHash(db: Db, keyHash: string): Promise<ApiKeyRow | undefined> {
  return db.kysely.selectFrom('api_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
}

/** The key whose current secret, or whose rotated-away previous secret, has this HMAC. */
export async function findApiKeyBySecretHash(db: Db, keyHash: string): Promise<ApiKeyRow | undefined> {
  return db.kysely
    .selectFrom('api_keys')
    .selectAll()
    .where((eb) => eb.or([eb('key_hash', '=', keyHash), eb('previous_key_hash', '=', keyHash)]))
    .executeTakeFirst();
}

export async function findApiKeyById(db: Db, id: string): Promise<ApiKeyRow | undefined> {
  return db.kysely.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Newest first; revoked keys included (tombstones). */
export async function listApiKeys(db: Db, filter: { userId?: string } = {}): Promise<ApiKeyRow[]> {
  let query = db.kysely.selectFrom('api_keys').selectAll();
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  return query.orderBy('created_at', 'desc').orderBy('id', 'asc').execute();
}

/** Sets `revoked_at` on a live key; false when the key is unknown, not the owner's, or already revoked. */
export async function revokeApiKey(db: Db, id: string, at: number, ownerId?: string): Promise<boolean> {
  let query = db.kysely
    .updateTable('api_keys')
    .set({ revoked_at: at })
    .where('id', '=', id)
    .where('revoked_at', 'is', null);
  if (ownerId !== undefined) query = query.where('user_id', '=', ownerId);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export type ApiKeyChanges = Pick<
  Updateable<ApiKeysTable>,
  | 'scopes'
  | 'disabled_at'
  | 'allowed_models'
  | 'allowed_ips'
  | 'key_hash'
  | 'key_prefix'
  | 'previous_key_hash'
  | 'previous_expires_at'
>;

/** Updates a live (unrevoked) key; false when it is unknown, not the owner's, or revoked. */
export async function updateApiKey(
  db: Db,
  id: string,
  changes: ApiKeyChanges,
  ownerId?: string,
): Promise<boolean> {
  let query = db.kysely
    .updateTable('api_keys')
    .set(changes)
    .where('id', '=', id)
    .where('revoked_at', 'is', null);
  if (ownerId !== undefined) query = query.where('user_id', '=', ownerId);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
