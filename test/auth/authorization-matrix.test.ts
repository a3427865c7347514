import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret, randomHex } from '../../src/server/auth/hash.ts';
import type { Db } from '../../src/server/db/connection.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import {
  KEY_NAMES,
  KEY_PRINCIPALS,
  type KeyPrincipal,
  LEGACY_KEY,
  PRINCIPALS,
  type Principal,
  ROUTES,
  type World,
} from './authorization-matrix.routes.ts';
import { cheapPasswordHash, freshIp, STRONG_PASSWORD } from './support.ts';

/**
 * Every /api/auth/* route and the /v1/* routes × every kind of caller, asserting the status code.
 * Callers include API keys of every scope (issue 14) owned by a user and by an admin: a key
 * reaches only the routes of its scopes, never creates a key with more rights than itself, and
 * never reads another user's data. Each cell gets fresh principals and fresh targets, so mutating
 * routes do not affect other cells.
 */

async function insertSession(db: Db, userId: string): Promise<string> {
  const token = randomHex(32);
  const now = Date.now();
  await db.kysely
    .insertInto('sessions')
    .values({
      id: hashSecret(TEST_HMAC_SECRET, token),
      user_id: userId,
      expires_at: now + 86_400_000,
      rotated_at: now,
      created_at: now,
    })
    .execute();
  return token;
}

describe.each(DIALECTS)('authorisation matrix on %s', (dialect) => {
  let t: TestApp;
  let passwordHash = '';

  beforeAll(async () => {
    t = await startTestApp({ dialect, settings: { apiKeys: LEGACY_KEY, registrationMode: 'open' } });
    passwordHash = cheapPasswordHash(STRONG_PASSWORD);
    // the first account exists, so `register` in the matrix is an ordinary registration
    await createUser(t.database.db, { role: 'admin' });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function buildWorld(): Promise<World> {
    const db = t.database.db;
    const user = await createUser(db, { passwordHash });
    const other = await createUser(db, { passwordHash });
    const admin = await createUser(db, { role: 'admin', passwordHash });
    const pending = await createUser(db, { status: 'pending', passwordHash });
    const disabled = await createUser(db, { status: 'disabled', passwordHash });
    const target = await createUser(db, { passwordHash });
    const userKey = await createApiKey(db, { userId: user.id });
    const revoked = await createApiKey(db, { userId: user.id, revokedAt: Date.now() - 1000 });
    const expired = await createApiKey(db, { userId: user.id, expiresAt: Date.now() - 1000 });
    const disabledKey = await createApiKey(db, { userId: disabled.id });
    const pausedKey = await createApiKey(db, { userId: user.id, disabledAt: Date.now() - 1000 });
    const scopedKeys = {} as Record<KeyPrincipal, string>;
    for (const name of KEY_NAMES) {
      const { owner, scopes } = KEY_PRINCIPALS[name];
      scopedKeys[name] = (
        await createApiKey(db, { userId: owner === 'user' ? user.id : admin.id, scopes })
      ).key;
    }
    const inviteId = randomUUID();
    await db.kysely
      .insertInto('invites')
      .values({
        id: inviteId,
        code_hash: hashSecret(TEST_HMAC_SECRET, randomHex(32)),
        code_prefix: 'abcdef01',
        created_by: admin.id,
        used_by: null,
        used_at: null,
        created_at: Date.now(),
        expires_at: Date.now() + 86_400_000,
      })
      .execute();
    const cookie = async (userId: string) => ({
      headers: {},
      cookies: { session: await insertSession(db, userId) },
    });
    const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` }, cookies: {} });
    const adminSession = await insertSession(db, admin.id);
    return {
      userId: user.id,
      userEmail: user.email,
      userKey,
      targetUserId: target.id,
      inviteId,
      headers: {
        anonymous: { headers: {}, cookies: {} },
        user: await cookie(user.id),
        otherUser: await cookie(other.id),
        admin: { headers: {}, cookies: { session: adminSession } },
        legacy: bearer(LEGACY_KEY),
        revokedKey: bearer(revoked.key),
        expiredKey: bearer(expired.key),
        pendingUser: await cookie(pending.id),
        disabledUser: bearer(disabledKey.key),
        disabledKey: bearer(pausedKey.key),
        ...(Object.fromEntries(KEY_NAMES.map((name) => [name, bearer(scopedKeys[name])])) as Record<
          KeyPrincipal,
          ReturnType<typeof bearer>
        >),
        crossSite: { headers: { 'sec-fetch-site': 'cross-site' }, cookies: { session: adminSession } },
      },
    };
  }

  // A mutating route builds 18 worlds and `register` hashes 18 real passwords (scrypt, ~100 ms
  // each on an idle core): on a loaded machine that exceeds the default 30 s.
  it.each(ROUTES.map((route) => [route.name, route] as const))(
    '%s',
    { timeout: 180_000 },
    async (_name, route) => {
      const actual: Partial<Record<Principal, number>> = {};
      // read-only routes share one world; every cell of a mutating route gets its own
      let shared: World | undefined;
      for (const principal of PRINCIPALS) {
        if (route.method !== 'GET' || !shared) shared = await buildWorld();
        const world = shared;
        const credentials = world.headers[principal];
        const response = await t.app.inject({
          method: route.method,
          url: route.url(world),
          remoteAddress: freshIp(),
          headers: credentials.headers,
          cookies: credentials.cookies,
          ...(route.body ? { payload: route.body(world) } : {}),
        });
        actual[principal] = response.statusCode;
      }
      expect(actual).toEqual(route.expect);
    },
  );
});
