import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret, randomHex } from '../../src/server/auth/hash.ts';
import type { Db } from '../../src/server/db/connection.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { cheapPasswordHash, freshIp, STRONG_PASSWORD } from './support.ts';

/**
 * Every /api/auth/* route and the /v1/* routes × every kind of caller, asserting the status code.
 * Callers include API keys of every scope (issue 14) owned by a user and by an admin: a key
 * reaches only the routes of its scopes, never creates a key with more rights than itself, and
 * never reads another user's data. Each cell gets fresh principals and fresh targets, so mutating
 * routes do not affect other cells.
 */

const LEGACY_KEY = 'matrix-legacy-key-0123456789';

/** Keys by owner and stored scopes. */
const KEY_PRINCIPALS = {
  userInference: { owner: 'user', scopes: 'inference' },
  userUsage: { owner: 'user', scopes: 'usage' },
  userKeys: { owner: 'user', scopes: 'keys' },
  userFull: { owner: 'user', scopes: 'inference,usage,keys' },
  adminAdmin: { owner: 'admin', scopes: 'admin' },
  adminDefault: { owner: 'admin', scopes: 'inference,usage' },
  adminAll: { owner: 'admin', scopes: 'inference,usage,keys,admin' },
} as const;
type KeyPrincipal = keyof typeof KEY_PRINCIPALS;
const KEY_NAMES = Object.keys(KEY_PRINCIPALS) as KeyPrincipal[];

const PRINCIPALS = [
  'anonymous',
  'user',
  'otherUser',
  'admin',
  'legacy',
  'revokedKey',
  'expiredKey',
  'disabledKey',
  'pendingUser',
  'disabledUser',
  'crossSite',
  ...KEY_NAMES,
] as const;
type Principal = (typeof PRINCIPALS)[number];

interface World {
  userId: string;
  userEmail: string;
  userKey: { id: string; key: string };
  targetUserId: string;
  inviteId: string;
  headers: Record<Principal, { headers: Record<string, string>; cookies: Record<string, string> }>;
}

interface Route {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: (w: World) => string;
  body?: (w: World) => Record<string, unknown>;
  /** Expected status per principal. */
  expect: Record<Principal, number>;
}

type Row = Record<Principal, number>;
const INVALID = {
  anonymous: 401,
  revokedKey: 401,
  expiredKey: 401,
  disabledKey: 401,
  pendingUser: 401,
  disabledUser: 401,
};

/** What a route needs from a key: a scope, every scope of its owner (`full`), or nothing. */
type Need = 'inference' | 'usage' | 'keys' | 'admin' | 'full' | null;

/** Each key principal: `ok` when its scopes cover `need`, else 403; `overrides` for the exceptions. */
function keyCells(need: Need, ok: number, overrides: Partial<Record<KeyPrincipal, number>> = {}) {
  const cells = {} as Record<KeyPrincipal, number>;
  for (const name of KEY_NAMES) {
    const { owner, scopes } = KEY_PRINCIPALS[name];
    const has = scopes.split(',');
    const full = owner === 'admin' ? ['inference', 'usage', 'keys', 'admin'] : ['inference', 'usage', 'keys'];
    const allowed =
      need === null || (need === 'full' ? full.every((s) => has.includes(s)) : has.includes(need));
    cells[name] = overrides[name] ?? (allowed ? ok : 403);
  }
  return cells;
}

/** Routes any signed-in caller may use; cross-site (an admin's cookie) passes only when safe. */
const userRoute = (
  ok: number,
  legacy: number,
  safe: boolean,
  need: Need,
  overrides: Partial<Record<KeyPrincipal, number>> = {},
): Row => ({
  ...INVALID,
  user: ok,
  otherUser: ok,
  admin: ok,
  legacy,
  crossSite: safe ? ok : 403,
  // a key of a scope-less need passes whatever its scopes; an admin-owned admin-scoped key is
  // still an admin, but admin rights do not reach another user's own routes
  ...keyCells(need, ok, overrides),
});
const adminRoute = (ok: number, safe: boolean): Row => ({
  ...INVALID,
  user: 403,
  otherUser: 403,
  admin: ok,
  legacy: ok,
  crossSite: safe ? ok : 403,
  ...keyCells('admin', ok, { userInference: 403, userUsage: 403, userKeys: 403, userFull: 403 }),
});
/** Pre-authentication routes: the outcome depends on the body, not the caller; CSRF still applies. */
const publicRoute = (ok: number, safe: boolean): Row => ({
  anonymous: ok,
  user: ok,
  otherUser: ok,
  admin: ok,
  legacy: ok,
  revokedKey: ok,
  expiredKey: ok,
  disabledKey: ok,
  pendingUser: ok,
  disabledUser: ok,
  crossSite: safe ? ok : 403,
  ...keyCells(null, ok),
});
/** Routes on the user's own key: only its owner reaches it; for everyone else it does not exist. */
const ownKeyRoute = (): Row => ({
  ...userRoute(404, 404, false, 'keys', { userKeys: 200, userFull: 200, adminAll: 404 }),
  user: 200,
});

const ROUTES: Route[] = [
  { name: 'status', method: 'GET', url: () => '/api/auth/status', expect: publicRoute(200, true) },
  {
    name: 'register',
    method: 'POST',
    url: () => '/api/auth/register',
    body: () => ({ email: `new-${randomHex(4)}@example.test`, password: STRONG_PASSWORD }),
    expect: publicRoute(201, false),
  },
  {
    name: 'login',
    method: 'POST',
    url: () => '/api/auth/login',
    body: (w) => ({ email: w.userEmail, password: STRONG_PASSWORD }),
    expect: publicRoute(200, false),
  },
  {
    name: 'token-login',
    method: 'POST',
    url: () => '/api/auth/token-login',
    body: (w) => ({ token: w.userKey.key }),
    expect: publicRoute(200, false),
  },
  { name: 'logout', method: 'POST', url: () => '/api/auth/logout', expect: publicRoute(200, false) },
  { name: 'me', method: 'GET', url: () => '/api/auth/me', expect: userRoute(200, 200, true, null) },
  {
    name: 'profile',
    method: 'PUT',
    url: () => '/api/auth/profile',
    body: () => ({ name: 'Renamed' }),
    expect: userRoute(200, 400, false, 'full'),
  },
  {
    name: 'password',
    method: 'PUT',
    url: () => '/api/auth/password',
    body: () => ({ current_password: STRONG_PASSWORD, new_password: 'another strong password' }),
    expect: userRoute(200, 400, false, 'full'),
  },
  {
    name: 'sessions',
    method: 'DELETE',
    url: () => '/api/auth/sessions',
    expect: userRoute(200, 400, false, 'full'),
  },
  {
    name: 'create key',
    method: 'POST',
    url: () => '/api/auth/api-keys',
    body: () => ({ name: 'matrix' }),
    // a new key gets inference + usage: a keys-only key cannot grant them
    expect: userRoute(201, 403, false, 'keys', { userKeys: 403 }),
  },
  {
    name: 'create key with scopes',
    method: 'POST',
    url: () => '/api/auth/api-keys',
    body: () => ({ name: 'matrix', scopes: ['keys'] }),
    expect: userRoute(201, 403, false, 'keys'),
  },
  {
    name: 'create key with the admin scope',
    method: 'POST',
    url: () => '/api/auth/api-keys',
    body: () => ({ name: 'matrix', scopes: ['admin'] }),
    // only admins' keys may have it, and only a key that has it may grant it
    expect: { ...userRoute(403, 403, false, 'keys', { adminAll: 201 }), admin: 201 },
  },
  {
    name: 'list keys',
    method: 'GET',
    url: () => '/api/auth/api-keys',
    expect: userRoute(200, 200, true, 'keys'),
  },
  {
    name: "revoke the user's key",
    method: 'DELETE',
    url: (w) => `/api/auth/api-keys/${w.userKey.id}`,
    expect: ownKeyRoute(),
  },
  {
    name: "disable the user's key",
    method: 'PATCH',
    url: (w) => `/api/auth/api-keys/${w.userKey.id}`,
    body: () => ({ disabled: true }),
    expect: ownKeyRoute(),
  },
  {
    name: "rotate the user's key",
    method: 'POST',
    url: (w) => `/api/auth/api-keys/${w.userKey.id}/rotate`,
    body: () => ({ grace: 0 }),
    expect: ownKeyRoute(),
  },
  { name: 'usage', method: 'GET', url: () => '/api/auth/usage', expect: userRoute(200, 200, true, 'usage') },
  {
    name: 'usage sources',
    method: 'GET',
    url: () => '/api/auth/usage/sources',
    expect: userRoute(200, 200, true, 'usage'),
  },
  { name: 'admin users', method: 'GET', url: () => '/api/auth/admin/users', expect: adminRoute(200, true) },
  {
    name: 'admin role',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/role`,
    body: () => ({ role: 'admin' }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin status',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/status`,
    body: () => ({ status: 'disabled' }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin password',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/password`,
    body: () => ({ password: 'reset by an admin 1' }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin delete user',
    method: 'DELETE',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}`,
    expect: adminRoute(200, false),
  },
  {
    name: 'admin list keys',
    method: 'GET',
    url: (w) => `/api/auth/admin/api-keys?user_id=${w.userId}`,
    expect: adminRoute(200, true),
  },
  {
    name: 'admin disable key',
    method: 'PATCH',
    url: (w) => `/api/auth/admin/api-keys/${w.userKey.id}`,
    body: () => ({ disabled: true }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin features',
    method: 'GET',
    url: () => '/api/auth/admin/features',
    expect: adminRoute(200, true),
  },
  {
    name: 'admin read permissions',
    method: 'GET',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/permissions`,
    expect: adminRoute(200, true),
  },
  {
    name: 'admin set permissions',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/permissions`,
    body: () => ({ chat: false }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin set model allowlist',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/models`,
    body: () => ({ enabled: true, models: ['demo'] }),
    expect: adminRoute(200, false),
  },
  { name: '/metrics', method: 'GET', url: () => '/metrics', expect: adminRoute(200, true) },
  {
    name: 'admin revoke key',
    method: 'DELETE',
    url: (w) => `/api/auth/admin/api-keys/${w.userKey.id}`,
    expect: adminRoute(200, false),
  },
  {
    name: 'admin create invite',
    method: 'POST',
    url: () => '/api/auth/admin/invites',
    body: () => ({}),
    expect: adminRoute(201, false),
  },
  {
    name: 'admin list invites',
    method: 'GET',
    url: () => '/api/auth/admin/invites',
    expect: adminRoute(200, true),
  },
  {
    name: 'admin delete invite',
    method: 'DELETE',
    url: (w) => `/api/auth/admin/invites/${w.inviteId}`,
    expect: adminRoute(200, false),
  },
  { name: 'admin usage', method: 'GET', url: () => '/api/auth/admin/usage', expect: adminRoute(200, true) },
  {
    name: 'admin usage sources',
    method: 'GET',
    url: () => '/api/auth/admin/usage/sources',
    expect: adminRoute(200, true),
  },
  // /v1/*: every valid caller passes; cookie-authenticated writes from another site do not
  {
    name: '/v1/models',
    method: 'GET',
    url: () => '/v1/models',
    expect: userRoute(200, 200, true, 'inference'),
  },
  {
    name: '/v1/chat/completions',
    method: 'POST',
    url: () => '/v1/chat/completions',
    body: () => ({ model: 'demo', messages: [{ role: 'user', content: 'hello' }] }),
    expect: userRoute(200, 200, false, 'inference'),
  },
  {
    name: '/v1/embeddings',
    method: 'POST',
    url: () => '/v1/embeddings',
    body: () => ({ model: 'demo', input: 'hello' }),
    expect: userRoute(200, 200, false, 'inference'),
  },
  {
    name: '/v1/usage',
    method: 'GET',
    url: () => '/v1/usage',
    // the calling key's own usage: sessions and legacy keys have none
    expect: { ...userRoute(403, 403, true, 'usage', {}), ...keyCells('usage', 200) },
  },
];

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

  it.each(ROUTES.map((route) => [route.name, route] as const))('%s', async (_name, route) => {
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
  });
});
