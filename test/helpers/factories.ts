import { randomUUID } from 'node:crypto';
import { hashSecret, randomHex } from '../../src/server/auth/hash.ts';
import type { Db } from '../../src/server/db/connection.ts';
import type { UserRow } from '../../src/server/db/schema.ts';
import { TEST_HMAC_SECRET } from './app.ts';

let counter = 0;

export interface UserFactoryInput {
  email?: string;
  name?: string;
  role?: 'admin' | 'user';
  status?: 'active' | 'pending' | 'disabled';
  passwordHash?: string | null;
}

/** Inserts a local user directly (no HTTP), for tests that need one. */
export async function createUser(db: Db, input: UserFactoryInput = {}): Promise<UserRow> {
  counter += 1;
  const now = Date.now();
  const email = (input.email ?? `user${counter}-${randomHex(3)}@example.test`).toLowerCase();
  const row: UserRow = {
    id: randomUUID(),
    email,
    name: input.name ?? `User ${counter}`,
    avatar_url: '',
    provider: 'local',
    subject: email,
    password_hash: input.passwordHash ?? null,
    role: input.role ?? 'user',
    status: input.status ?? 'active',
    created_at: now,
    updated_at: now,
  };
  await db.kysely.insertInto('users').values(row).execute();
  return row;
}

export interface ApiKeyFactoryInput {
  userId: string;
  name?: string;
  expiresAt?: number | null;
  revokedAt?: number | null;
  disabledAt?: number | null;
  /** Stored form: `all` (the default, as for keys from before scopes) or e.g. `inference,usage`. */
  scopes?: string;
  hmacSecret?: string;
}

/** Inserts an API key the way the service stores it; returns the plaintext once, like the API. */
export async function createApiKey(
  db: Db,
  input: ApiKeyFactoryInput,
): Promise<{ id: string; key: string; name: string; prefix: string }> {
  const key = `kt-${randomHex(32)}`;
  const id = randomUUID();
  const name = input.name ?? `key-${++counter}`;
  await db.kysely
    .insertInto('api_keys')
    .values({
      id,
      user_id: input.userId,
      name,
      key_hash: hashSecret(input.hmacSecret ?? TEST_HMAC_SECRET, key),
      key_prefix: key.slice(0, 12),
      role: 'user',
      created_at: Date.now(),
      expires_at: input.expiresAt ?? null,
      last_used: null,
      revoked_at: input.revokedAt ?? null,
      disabled_at: input.disabledAt ?? null,
      scopes: input.scopes ?? 'all',
    })
    .execute();
  return { id, key, name, prefix: key.slice(0, 12) };
}
