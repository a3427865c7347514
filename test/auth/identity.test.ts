import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/server/auth/hash.ts';
import { hashPassword } from '../../src/server/auth/password.ts';
import { deleteExpiredSessions } from '../../src/server/auth/sessions.repository.ts';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import {
  type Account,
  cookieValue,
  createKey,
  freshIp,
  login,
  registerAccount,
  STRONG_PASSWORD,
  setCookieHeaders,
} from './support.ts';

const LEGACY_KEY = 'legacy-shared-key-0123456789';
const ADMIN_EMAIL = 'Boss@Example.test';
const HOUR = 3_600_000;
const DAY = 86_400_000;

describe.each(DIALECTS)('identity on %s', (dialect) => {
  let t: TestApp;
  let clock = Date.now();
  let admin: Account;
  let alice: Account;
  let bob: Account;

  beforeAll(async () => {
    t = await startTestApp({
      dialect,
      now: () => clock,
      settings: { apiKeys: LEGACY_KEY, adminEmail: ADMIN_EMAIL, registrationMode: 'open' },
    });
    admin = await registerAccount(t.app, 'first@example.test', 'First');
    alice = await registerAccount(t.app, 'alice@example.test', 'Alice');
    bob = await registerAccount(t.app, 'bob@example.test', 'Bob');
  });
  afterAll(async () => {
    await t?.close();
  });

  const me = (headers: Record<string, string>, cookies?: Record<string, string>) =>
    t.app.inject({ method: 'GET', url: '/api/auth/me', headers, cookies });

  describe('middleware: credential order and source', () => {
    it('session cookie and Bearer session → web, no api key', async () => {
      const viaCookie = await me({}, { session: alice.session });
      expect(viaCookie.statusCode).toBe(200);
      expect(viaCookie.json()).toMatchObject({ id: alice.id, source: 'web' });
      const viaBearer = await me({ authorization: `Bearer ${alice.session}` });
      expect(viaBearer.json()).toMatchObject({ id: alice.id, source: 'web' });
    });

    it('Bearer key, x-api-key, xi-api-key and the token cookie → apikey with the key id', async () => {
      const key = await createKey(t.app, alice.session);
      for (const [headers, cookies] of [
        [{ authorization: `Bearer ${key.key}` }, undefined],
        [{ 'x-api-key': key.key }, undefined],
        [{ 'xi-api-key': key.key }, undefined],
        [{}, { token: key.key }],
      ] as const) {
        const response = await me(headers, cookies);
        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ id: alice.id, source: 'apikey' });
      }
      // request.auth carries the key: the admin list shows the key used (last_used via recorder)
      await t.recorder.flushNow();
      const row = await t.database.db.kysely
        .selectFrom('api_keys')
        .select('last_used')
        .where('id', '=', key.id)
        .executeTakeFirstOrThrow();
      expect(row.last_used).toBe(clock);
    });

    it('a legacy env key → legacy, synthetic admin, via Bearer, raw Authorization, x-api-key and token cookie', async () => {
      for (const [headers, cookies] of [
        [{ authorization: `Bearer ${LEGACY_KEY}` }, undefined],
        [{ authorization: LEGACY_KEY }, undefined],
        [{ 'x-api-key': LEGACY_KEY }, undefined],
        [{}, { token: LEGACY_KEY }],
      ] as const) {
        const response = await me(headers, cookies);
        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({
          id: 'legacy-api-key',
          name: 'API Key User',
          role: 'admin',
          source: 'legacy',
        });
      }
      expect((await me({ authorization: 'Bearer wrong-legacy-key' })).statusCode).toBe(401);
    });

    it('a session cookie wins over a Bearer key; a Bearer session wins over x-api-key', async () => {
      const bobKey = await createKey(t.app, bob.session);
      const both = await me({ authorization: `Bearer ${bobKey.key}` }, { session: alice.session });
      expect(both.json()).toMatchObject({ id: alice.id, source: 'web' });
      const bearerFirst = await me({ authorization: `Bearer ${alice.session}`, 'x-api-key': bobKey.key });
      expect(bearerFirst.json()).toMatchObject({ id: alice.id, source: 'web' });
      // an invalid session cookie falls through to the next credential
      const fallThrough = await me({ 'x-api-key': bobKey.key }, { session: 'f'.repeat(64) });
      expect(fallThrough.json()).toMatchObject({ id: bob.id, source: 'apikey' });
    });

    it('x-api-key never accepts a session token', async () => {
      expect((await me({ 'x-api-key': alice.session })).statusCode).toBe(401);
    });

    it('API paths answer 401 with WWW-Authenticate and the OpenAI body; exempt and UI paths pass', async () => {
      for (const url of ['/v1/models', '/api/usage-anything', '/metrics']) {
        const response = await t.app.inject({ method: 'GET', url });
        expect(response.statusCode, url).toBe(401);
        expect(response.headers['www-authenticate']).toBe('Bearer');
        expect(response.json()).toEqual({
          error: { code: 401, message: 'An authentication key is required', type: 'invalid_request_error' },
        });
      }
      expect((await t.app.inject({ method: 'GET', url: '/api/auth/status' })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: '/some/dashboard/page' })).statusCode).not.toBe(401);
    });

    it('valid credentials pass the API-path check: session cookie, Bearer session, Bearer key, legacy', async () => {
      const key = await createKey(t.app, alice.session);
      const cases = [
        { cookies: { session: alice.session } },
        { headers: { authorization: `Bearer ${alice.session}` } },
        { headers: { authorization: `Bearer ${key.key}` } },
        { headers: { authorization: `Bearer ${LEGACY_KEY}` } },
      ];
      for (const c of cases) {
        const response = await t.app.inject({ method: 'GET', url: '/v1/models', ...c });
        expect(response.statusCode).toBe(200);
      }
    });

    it('refuses revoked, expired, pending-owner and disabled-owner keys with the reference messages', async () => {
      const revoked = await createApiKey(t.database.db, { userId: alice.id, revokedAt: clock - 1 });
      const expired = await createApiKey(t.database.db, { userId: alice.id, expiresAt: clock - 1 });
      const pendingUser = await createUser(t.database.db, { status: 'pending' });
      const disabledUser = await createUser(t.database.db, { status: 'disabled' });
      const pendingKey = await createApiKey(t.database.db, { userId: pendingUser.id });
      const disabledKey = await createApiKey(t.database.db, { userId: disabledUser.id });
      const cases: [string, string][] = [
        [revoked.key, 'API key revoked'],
        [expired.key, 'API key expired'],
        [pendingKey.key, 'user account is not active'],
        [disabledKey.key, 'user account is not active'],
        [`kt-${'0'.repeat(64)}`, 'invalid API key'],
      ];
      for (const [key, message] of cases) {
        const response = await t.app.inject({
          method: 'GET',
          url: '/v1/models',
          headers: { authorization: `Bearer ${key}` },
        });
        expect(response.statusCode).toBe(401);
        expect(response.json().error.message).toBe(message);
      }
    });

    it('an expired or unknown session is refused', async () => {
      const user = await createUser(t.database.db);
      const token = 'a'.repeat(64);
      await t.database.db.kysely
        .insertInto('sessions')
        .values({
          id: hashSecret(TEST_HMAC_SECRET, token),
          user_id: user.id,
          expires_at: clock - 1,
          rotated_at: clock - DAY,
          created_at: clock - DAY,
        })
        .execute();
      expect(
        (await t.app.inject({ method: 'GET', url: '/v1/models', cookies: { session: token } })).statusCode,
      ).toBe(401);
      expect((await me({ authorization: `Bearer ${'b'.repeat(64)}` })).statusCode).toBe(401);
    });

    it('keys hashed under another HMAC secret (or none) do not validate', async () => {
      const other = await createApiKey(t.database.db, {
        userId: alice.id,
        hmacSecret: 'another-secret-0123456789abcdef0123',
      });
      const empty = await createApiKey(t.database.db, { userId: alice.id, hmacSecret: '' });
      expect((await me({ authorization: `Bearer ${other.key}` })).statusCode).toBe(401);
      expect((await me({ authorization: `Bearer ${empty.key}` })).statusCode).toBe(401);
    });
  });

  describe('RequireAdmin', () => {
    const list = (opts: { headers?: Record<string, string>; cookies?: Record<string, string> }) =>
      t.app.inject({ method: 'GET', url: '/api/auth/admin/users', ...opts });

    it('admin 200, user 403, nobody 401, legacy key 200, with RequireAdmin shapes', async () => {
      expect((await list({ cookies: { session: admin.session } })).statusCode).toBe(200);
      const user = await list({ cookies: { session: alice.session } });
      expect(user.statusCode).toBe(403);
      expect(user.json()).toEqual({
        error: { message: 'Admin access required', code: 403, type: 'authorization_error' },
      });
      const nobody = await list({});
      expect(nobody.statusCode).toBe(401);
      expect(nobody.json()).toEqual({
        error: { message: 'Authentication required', code: 401, type: 'authentication_error' },
      });
      expect((await list({ headers: { authorization: `Bearer ${LEGACY_KEY}` } })).statusCode).toBe(200);
    });

    it('authorisation uses the owner current role: a demoted admin key loses admin at once', async () => {
      const carol = await registerAccount(t.app, 'carol@example.test', 'Carol');
      const promote = await t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${carol.id}/role`,
        cookies: { session: admin.session },
        payload: { role: 'admin' },
      });
      expect(promote.statusCode).toBe(200);
      const key = await createKey(t.app, carol.session);
      expect((await list({ headers: { authorization: `Bearer ${key.key}` } })).statusCode).toBe(200);
      await t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${carol.id}/role`,
        cookies: { session: admin.session },
        payload: { role: 'user' },
      });
      expect((await list({ headers: { authorization: `Bearer ${key.key}` } })).statusCode).toBe(403);
      expect((await list({ cookies: { session: carol.session } })).statusCode).toBe(403);
    });

    it('refuses self-changes of role, status and deletion', async () => {
      for (const [method, url, payload] of [
        ['PUT', `/api/auth/admin/users/${admin.id}/role`, { role: 'user' }],
        ['PUT', `/api/auth/admin/users/${admin.id}/status`, { status: 'disabled' }],
        ['DELETE', `/api/auth/admin/users/${admin.id}`, undefined],
      ] as const) {
        const response = await t.app.inject({ method, url, cookies: { session: admin.session }, payload });
        expect(response.statusCode).toBe(400);
        expect(response.json().error).toMatch(/your own/);
      }
    });

    it('disabling a user stops their sessions and keys at once; re-enabling restores them', async () => {
      const dave = await registerAccount(t.app, 'dave@example.test', 'Dave');
      const key = await createKey(t.app, dave.session);
      expect((await me({ authorization: `Bearer ${key.key}` })).statusCode).toBe(200);
      const set = (status: string) =>
        t.app.inject({
          method: 'PUT',
          url: `/api/auth/admin/users/${dave.id}/status`,
          cookies: { session: admin.session },
          payload: { status },
        });
      expect((await set('disabled')).statusCode).toBe(200);
      expect((await me({ authorization: `Bearer ${key.key}` })).statusCode).toBe(401);
      expect((await me({}, { session: dave.session })).statusCode).toBe(401);
      expect((await login(t.app, dave.email)).statusCode).toBe(403);
      expect((await set('active')).statusCode).toBe(200);
      expect((await me({ authorization: `Bearer ${key.key}` })).statusCode).toBe(200);
      expect((await set('sleeping')).statusCode).toBe(400);
    });
  });

  describe('API keys', () => {
    it('create returns kt- + 64 hex once, 12-char prefix, stores only the HMAC, and works as Bearer', async () => {
      const created = await createKey(t.app, alice.session, { name: 'laptop' });
      expect(created.key).toMatch(/^kt-[0-9a-f]{64}$/);
      expect(created.keyPrefix).toBe(created.key.slice(0, 12));
      const row = await t.database.db.kysely
        .selectFrom('api_keys')
        .selectAll()
        .where('id', '=', created.id)
        .executeTakeFirstOrThrow();
      expect(row.key_hash).toBe(hashSecret(TEST_HMAC_SECRET, created.key));
      expect(row.key_prefix).toBe(created.key.slice(0, 12));
      expect(JSON.stringify(row)).not.toContain(created.key);
      const other = await createKey(t.app, alice.session, { name: 'laptop' });
      expect(other.key).not.toBe(created.key);
      expect((await me({ authorization: `Bearer ${created.key}` })).json()).toMatchObject({ id: alice.id });
    });

    it('unauthenticated create → 401 not authenticated; missing name → 400 name is required', async () => {
      const anon = await t.app.inject({ method: 'POST', url: '/api/auth/api-keys', payload: { name: 'x' } });
      expect(anon.statusCode).toBe(401);
      expect(anon.json()).toEqual({ error: 'not authenticated' });
      for (const payload of [{}, { name: '' }]) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/api/auth/api-keys',
          cookies: { session: alice.session },
          payload,
        });
        expect(response.statusCode).toBe(400);
        expect(response.json()).toEqual({ error: 'name is required' });
      }
      const wrongType = await t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session: alice.session },
        payload: { name: 42 },
      });
      expect(wrongType.statusCode).toBe(400);
      expect(wrongType.json().error).toMatch(/^name: /);
    });

    it('expiry: expiresAt (RFC 3339, past accepted), expiresIn, invalid formats', async () => {
      const at = await createKey(t.app, alice.session, { name: 'a', expiresAt: '2031-01-02T03:04:05Z' });
      expect(at).toMatchObject({ expiresAt: '2031-01-02T03:04:05.000Z' });
      const inDays = await createKey(t.app, alice.session, { name: 'b', expiresIn: '90d' });
      expect(Date.parse((inDays as unknown as { expiresAt: string }).expiresAt)).toBe(clock + 90 * DAY);
      const past = await createKey(t.app, alice.session, { name: 'c', expiresAt: '2001-01-01T00:00:00Z' });
      expect((await me({ authorization: `Bearer ${past.key}` })).statusCode).toBe(401);
      const none = await createKey(t.app, alice.session, { name: 'd' });
      expect(none).not.toHaveProperty('expiresAt');
      for (const [payload, message] of [
        [{ name: 'e', expiresAt: 'tomorrow' }, 'invalid expiresAt format, use RFC3339'],
        [{ name: 'e', expiresIn: 'soon' }, 'invalid expiresIn format'],
      ] as const) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/api/auth/api-keys',
          cookies: { session: alice.session },
          payload,
        });
        expect(response.statusCode).toBe(400);
        expect(response.json()).toEqual({ error: message });
      }
    });

    it('a key that expires later stops working when the clock passes its expiry (row kept)', async () => {
      const key = await createKey(t.app, alice.session, { name: 'short', expiresIn: '2h' });
      expect((await me({ 'x-api-key': key.key })).statusCode).toBe(200);
      clock += 3 * HOUR;
      try {
        const refused = await t.app.inject({
          method: 'GET',
          url: '/v1/models',
          headers: { 'x-api-key': key.key },
        });
        expect(refused.statusCode).toBe(401);
        expect(refused.json().error.message).toBe('API key expired');
        // Bearer sessions do not rotate: alice's cookie token stays valid for the later tests
        const list = await t.app.inject({
          method: 'GET',
          url: '/api/auth/api-keys',
          headers: { authorization: `Bearer ${alice.session}` },
        });
        expect(list.json().keys.find((k: { id: string }) => k.id === key.id)).toMatchObject({
          expired: true,
          revoked: false,
        });
      } finally {
        clock -= 3 * HOUR;
      }
    });

    it('list: only the caller keys, newest first, reference fields plus revoked/revokedAt', async () => {
      const erin = await registerAccount(t.app, 'erin@example.test', 'Erin');
      const first = await createKey(t.app, erin.session, { name: 'one' });
      clock += 1;
      const second = await createKey(t.app, erin.session, { name: 'two' });
      await createKey(t.app, bob.session, { name: 'bobs' });
      const response = await t.app.inject({
        method: 'GET',
        url: '/api/auth/api-keys',
        cookies: { session: erin.session },
      });
      expect(response.statusCode).toBe(200);
      const keys = response.json().keys;
      expect(keys.map((k: { id: string }) => k.id)).toEqual([second.id, first.id]);
      expect(keys[0]).toMatchObject({
        name: 'two',
        keyPrefix: second.keyPrefix,
        role: 'user',
        lastUsed: null,
        revoked: false,
        revokedAt: null,
      });
      expect(keys[0]).not.toHaveProperty('expiresAt');
      expect(JSON.stringify(keys)).not.toContain(second.key);
    });

    it('revoke: owner 200 then the key gets 401; another user 404 and the key keeps working; tombstone kept', async () => {
      const key = await createKey(t.app, alice.session, { name: 'to-revoke' });
      const byBob = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/api-keys/${key.id}`,
        cookies: { session: bob.session },
      });
      expect(byBob.statusCode).toBe(404);
      expect(byBob.json()).toEqual({ error: 'API key not found' });
      expect((await me({ authorization: `Bearer ${key.key}` })).statusCode).toBe(200);
      const byAlice = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/api-keys/${key.id}`,
        cookies: { session: alice.session },
      });
      expect(byAlice.statusCode).toBe(200);
      expect(byAlice.json()).toEqual({ message: 'API key revoked' });
      expect((await me({ authorization: `Bearer ${key.key}` })).statusCode).toBe(401);
      const again = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/api-keys/${key.id}`,
        cookies: { session: alice.session },
      });
      expect(again.statusCode).toBe(404);
      const row = await t.database.db.kysely
        .selectFrom('api_keys')
        .selectAll()
        .where('id', '=', key.id)
        .executeTakeFirstOrThrow();
      expect(row.revoked_at).toBe(clock);
      const list = await t.app.inject({
        method: 'GET',
        url: '/api/auth/api-keys',
        cookies: { session: alice.session },
      });
      expect(list.json().keys.find((k: { id: string }) => k.id === key.id)).toMatchObject({
        revoked: true,
        revokedAt: new Date(clock).toISOString(),
      });
    });

    it('admin lists any user keys (revoked included, user_id filter) and revokes any key', async () => {
      const key = await createKey(t.app, bob.session, { name: 'admin-target' });
      const all = await t.app.inject({
        method: 'GET',
        url: `/api/auth/admin/api-keys?user_id=${bob.id}`,
        cookies: { session: admin.session },
      });
      expect(all.statusCode).toBe(200);
      const keys = all.json().keys as { id: string; userId: string; userName: string }[];
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((k) => k.userId === bob.id && k.userName === 'Bob')).toBe(true);
      expect(keys.some((k) => k.id === key.id)).toBe(true);
      const userTry = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/admin/api-keys/${key.id}`,
        cookies: { session: alice.session },
      });
      expect(userTry.statusCode).toBe(403);
      const revoke = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/admin/api-keys/${key.id}`,
        cookies: { session: admin.session },
      });
      expect(revoke.statusCode).toBe(200);
      expect((await me({ authorization: `Bearer ${key.key}` })).statusCode).toBe(401);
      const after = await t.app.inject({
        method: 'GET',
        url: `/api/auth/admin/api-keys?user_id=${bob.id}`,
        cookies: { session: admin.session },
      });
      expect(after.json().keys.find((k: { id: string }) => k.id === key.id)).toMatchObject({ revoked: true });
      const unknown = await t.app.inject({
        method: 'DELETE',
        url: '/api/auth/admin/api-keys/nope',
        cookies: { session: admin.session },
      });
      expect(unknown.statusCode).toBe(404);
    });

    it('token-login: a user key creates a web session; a legacy key sets the token cookie; bad → 401, empty → 400', async () => {
      const key = await createKey(t.app, alice.session);
      const withKey = await t.app.inject({
        method: 'POST',
        url: '/api/auth/token-login',
        remoteAddress: freshIp(),
        payload: { token: key.key },
      });
      expect(withKey.statusCode).toBe(200);
      expect(withKey.json().user).toMatchObject({ id: alice.id });
      const session = cookieValue(withKey, 'session');
      expect((await me({}, { session: session ?? '' })).json()).toMatchObject({
        id: alice.id,
        source: 'web',
      });
      const withLegacy = await t.app.inject({
        method: 'POST',
        url: '/api/auth/token-login',
        remoteAddress: freshIp(),
        payload: { token: LEGACY_KEY },
      });
      expect(withLegacy.statusCode).toBe(200);
      expect(cookieValue(withLegacy, 'token')).toBe(LEGACY_KEY);
      const bad = await t.app.inject({
        method: 'POST',
        url: '/api/auth/token-login',
        remoteAddress: freshIp(),
        payload: { token: 'nope' },
      });
      expect(bad.statusCode).toBe(401);
      expect(bad.json()).toEqual({ error: 'invalid token' });
      const empty = await t.app.inject({
        method: 'POST',
        url: '/api/auth/token-login',
        remoteAddress: freshIp(),
        payload: { token: '' },
      });
      expect(empty.statusCode).toBe(400);
      expect(empty.json()).toEqual({ error: 'token is required' });
    });
  });

  describe('sessions', () => {
    it('64-hex token, only its HMAC stored, 30-day expiry, rotated_at set, cookie attributes', async () => {
      const response = await login(t.app, alice.email);
      expect(response.statusCode).toBe(200);
      const token = cookieValue(response, 'session') ?? '';
      expect(token).toMatch(/^[0-9a-f]{64}$/);
      const row = await t.database.db.kysely
        .selectFrom('sessions')
        .selectAll()
        .where('id', '=', hashSecret(TEST_HMAC_SECRET, token))
        .executeTakeFirstOrThrow();
      expect(row.user_id).toBe(alice.id);
      expect(row.expires_at - row.created_at).toBe(30 * DAY);
      expect(row.rotated_at).toBe(clock);
      const stored = await t.database.db.kysely.selectFrom('sessions').select('id').execute();
      expect(stored.map((s) => s.id)).not.toContain(token);
      const header = setCookieHeaders(response).find((h) => h.startsWith('session=')) ?? '';
      expect(header).toMatch(/HttpOnly/);
      expect(header).toMatch(/SameSite=Lax/);
      expect(header).toMatch(/Path=\//);
      expect(header).toMatch(/Max-Age=2592000/);
      expect(header).not.toMatch(/Secure/);
      const https = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: freshIp(),
        headers: { 'x-forwarded-proto': 'https' },
        payload: { email: alice.email, password: STRONG_PASSWORD },
      });
      expect(setCookieHeaders(https).find((h) => h.startsWith('session='))).toMatch(/Secure/);
    });

    it('rotates a cookie session after an hour, keeping user and expiry, with a 60 s grace for the old token; Bearer sessions do not rotate', async () => {
      const start = clock;
      const session = cookieValue(await login(t.app, bob.email), 'session') ?? '';
      const before = await t.database.db.kysely
        .selectFrom('sessions')
        .selectAll()
        .where('id', '=', hashSecret(TEST_HMAC_SECRET, session))
        .executeTakeFirstOrThrow();
      clock = start + HOUR - 1;
      const early = await me({}, { session });
      expect(cookieValue(early, 'session')).toBeUndefined();
      clock = start + HOUR + 1;
      try {
        const bearer = await me({ authorization: `Bearer ${session}` });
        expect(bearer.statusCode).toBe(200);
        expect(cookieValue(bearer, 'session')).toBeUndefined();
        const rotated = await me({}, { session });
        expect(rotated.statusCode).toBe(200);
        const next = cookieValue(rotated, 'session') ?? '';
        expect(next).toMatch(/^[0-9a-f]{64}$/);
        expect(next).not.toBe(session);
        const row = await t.database.db.kysely
          .selectFrom('sessions')
          .selectAll()
          .where('id', '=', hashSecret(TEST_HMAC_SECRET, next))
          .executeTakeFirstOrThrow();
        expect(row.user_id).toBe(bob.id);
        expect(row.expires_at).toBe(before.expires_at);
        expect(row.rotated_at).toBe(clock);
        expect((await me({}, { session: next })).json()).toMatchObject({ id: bob.id });
        // requests already in flight with the old cookie still pass for 60 s, without rotating again
        clock += 59_000;
        const inFlight = await me({}, { session });
        expect(inFlight.statusCode).toBe(200);
        expect(cookieValue(inFlight, 'session')).toBeUndefined();
        clock += 1_001;
        expect((await me({}, { session })).statusCode).toBe(401);
        expect((await me({}, { session: next })).statusCode).toBe(200);
      } finally {
        clock = start;
      }
    });

    it('expired sessions are refused and cleaned up', async () => {
      const session = cookieValue(await login(t.app, bob.email), 'session') ?? '';
      const id = hashSecret(TEST_HMAC_SECRET, session);
      const start = clock;
      clock = start + 30 * DAY + 1;
      try {
        expect((await me({}, { session })).statusCode).toBe(401);
      } finally {
        clock = start;
      }
      // cleanup removes what has expired by now, and nothing else
      await t.database.db.kysely
        .updateTable('sessions')
        .set({ expires_at: start - 1 })
        .where('id', '=', id)
        .execute();
      expect(await deleteExpiredSessions(t.database.db, start)).toBeGreaterThan(0);
      const alive = await t.database.db.kysely
        .selectFrom('sessions')
        .select('id')
        .where('id', '=', hashSecret(TEST_HMAC_SECRET, alice.session))
        .executeTakeFirst();
      expect(alive).toBeDefined();
      const gone = await t.database.db.kysely
        .selectFrom('sessions')
        .select('id')
        .where('id', '=', id)
        .executeTakeFirst();
      expect(gone).toBeUndefined();
    });

    it('logout ends the cookie session; DELETE /sessions ends all and issues a new one', async () => {
      const one = cookieValue(await login(t.app, bob.email), 'session') ?? '';
      const two = cookieValue(await login(t.app, bob.email), 'session') ?? '';
      const out = await t.app.inject({ method: 'POST', url: '/api/auth/logout', cookies: { session: one } });
      expect(out.statusCode).toBe(200);
      expect(setCookieHeaders(out).find((h) => h.startsWith('session='))).toMatch(/Max-Age=-1/);
      expect((await me({}, { session: one })).statusCode).toBe(401);
      expect((await me({}, { session: two })).statusCode).toBe(200);
      const all = await t.app.inject({
        method: 'DELETE',
        url: '/api/auth/sessions',
        cookies: { session: two },
      });
      expect(all.statusCode).toBe(200);
      const fresh = cookieValue(all, 'session') ?? '';
      expect((await me({}, { session: two })).statusCode).toBe(401);
      expect((await me({}, { session: fresh })).statusCode).toBe(200);
      bob.session = fresh;
    });
  });

  describe('accounts and roles', () => {
    it('the first user is admin, later users are users; admin email matches case-insensitively', async () => {
      const users = await t.app.inject({
        method: 'GET',
        url: '/api/auth/admin/users',
        cookies: { session: admin.session },
      });
      const byEmail = new Map(
        users.json().users.map((u: { email: string; role: string }) => [u.email, u.role]),
      );
      expect(byEmail.get('first@example.test')).toBe('admin');
      expect(byEmail.get('alice@example.test')).toBe('user');
      const boss = await registerAccount(t.app, 'BOSS@example.TEST', 'Boss');
      expect((await me({}, { session: boss.session })).json()).toMatchObject({
        role: 'admin',
        email: 'boss@example.test',
      });
    });

    it('MaybePromote on login promotes the admin email and never demotes', async () => {
      // a user row holding the admin email but role user (e.g. set before the variable was)
      await t.database.db.kysely
        .updateTable('users')
        .set({ role: 'user' })
        .where('email', '=', 'boss@example.test')
        .execute();
      const promoted = await login(t.app, 'boss@example.test');
      expect(promoted.json().user).toMatchObject({ role: 'admin' });
      const stillAdmin = await login(t.app, admin.email);
      expect(stillAdmin.json().user).toMatchObject({ role: 'admin' });
    });

    it('register: duplicate email answers 201 registration processed without a session', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        remoteAddress: freshIp(),
        payload: { email: 'Alice@Example.test', password: STRONG_PASSWORD, name: 'x' },
      });
      expect(response.statusCode).toBe(201);
      expect(response.json()).toEqual({ message: 'registration processed' });
      expect(cookieValue(response, 'session')).toBeUndefined();
    });

    it('password policy: short (overridable), NUL, >1024 bytes, empty', async () => {
      const post = (payload: Record<string, unknown>) =>
        t.app.inject({ method: 'POST', url: '/api/auth/register', remoteAddress: freshIp(), payload });
      const short = await post({ email: 'short@example.test', password: 'short' });
      expect(short.statusCode).toBe(400);
      expect(short.json()).toMatchObject({ error_code: 'password_too_short', overridable: true });
      expect(
        (await post({ email: 'short@example.test', password: 'short', acknowledge_weak_password: true }))
          .statusCode,
      ).toBe(201);
      const nul = await post({ email: 'nul@example.test', password: `${STRONG_PASSWORD}\u0000` });
      expect(nul.json()).toMatchObject({ error_code: 'password_nul', overridable: false });
      const long = await post({
        email: 'long@example.test',
        password: 'é'.repeat(513),
        acknowledge_weak_password: true,
      });
      expect(long.statusCode).toBe(400);
      expect(long.json()).toMatchObject({ error_code: 'password_too_long' });
      expect((await post({ email: 'ok-long@example.test', password: 'x'.repeat(1024) })).statusCode).toBe(
        201,
      );
      expect((await post({ email: 'empty@example.test', password: '' })).json()).toMatchObject({
        error_code: 'password_empty',
      });
      expect((await post({ email: 'not-an-email', password: STRONG_PASSWORD })).statusCode).toBe(400);
    });

    it('login: wrong password 401, missing field 400, pending 403', async () => {
      const wrong = await login(t.app, alice.email, 'not the password at all');
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json()).toEqual({ error: 'invalid email or password' });
      expect((await login(t.app, 'nobody@example.test')).statusCode).toBe(401);
      const missing = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: freshIp(),
        payload: { email: 'a@b.c' },
      });
      expect(missing.statusCode).toBe(400);
      expect(missing.json()).toEqual({ error: 'password is required' });
      const pending = await createUser(t.database.db, {
        status: 'pending',
        passwordHash: await hashPassword(STRONG_PASSWORD),
      });
      expect((await login(t.app, pending.email)).statusCode).toBe(403);
    });

    it('status works anonymously; me, profile and password change', async () => {
      const status = await t.app.inject({ method: 'GET', url: '/api/auth/status' });
      expect(status.json()).toMatchObject({
        authEnabled: true,
        hasUsers: true,
        registrationMode: 'open',
        user: null,
        providers: ['local'],
      });
      const withUser = await t.app.inject({
        method: 'GET',
        url: '/api/auth/status',
        cookies: { session: alice.session },
      });
      expect(withUser.json().user).toMatchObject({ id: alice.id });
      const profile = await t.app.inject({
        method: 'PUT',
        url: '/api/auth/profile',
        cookies: { session: alice.session },
        payload: { name: 'Alice A.' },
      });
      expect(profile.statusCode).toBe(200);
      expect((await me({}, { session: alice.session })).json()).toMatchObject({ name: 'Alice A.' });
      const badAvatar = await t.app.inject({
        method: 'PUT',
        url: '/api/auth/profile',
        cookies: { session: alice.session },
        payload: { avatar_url: 'javascript:alert(1)' },
      });
      expect(badAvatar.statusCode).toBe(400);
      expect(badAvatar.json().error).toMatch(/^avatar_url: /);
      const badCurrent = await t.app.inject({
        method: 'PUT',
        url: '/api/auth/password',
        cookies: { session: alice.session },
        payload: { current_password: 'wrong password here', new_password: 'a brand new password' },
      });
      expect(badCurrent.statusCode).toBe(400);
      const changed = await t.app.inject({
        method: 'PUT',
        url: '/api/auth/password',
        cookies: { session: alice.session },
        payload: { current_password: STRONG_PASSWORD, new_password: 'a brand new password' },
      });
      expect(changed.statusCode).toBe(200);
      expect((await me({}, { session: alice.session })).statusCode).toBe(401);
      const fresh = cookieValue(changed, 'session') ?? '';
      expect((await me({}, { session: fresh })).statusCode).toBe(200);
      expect((await login(t.app, alice.email, 'a brand new password')).statusCode).toBe(200);
      alice.session = fresh;
    });
  });

  describe('protection', () => {
    it('limits login to 5 a minute per IP with Retry-After; other IPs are unaffected; resets after a minute', async () => {
      const ip = freshIp();
      const attempt = () =>
        t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          remoteAddress: ip,
          payload: { email: 'x@example.test', password: 'whatever-password' },
        });
      for (let i = 0; i < 5; i += 1) expect((await attempt()).statusCode).toBe(401);
      const limited = await attempt();
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await login(t.app, 'x@example.test', 'whatever-password')).statusCode).toBe(401);
      const start = clock;
      clock = start + 60_001;
      try {
        expect((await attempt()).statusCode).toBe(401);
      } finally {
        clock = start;
      }
    });

    it('refuses cross-site cookie-authenticated writes; header credentials and absent header pass', async () => {
      const crossSite = await t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session: bob.session },
        headers: { 'sec-fetch-site': 'cross-site' },
        payload: { name: 'csrf' },
      });
      expect(crossSite.statusCode).toBe(403);
      expect(crossSite.json()).toEqual({ error: 'cross-site request refused' });
      for (const site of ['same-origin', 'same-site', 'none']) {
        const ok = await t.app.inject({
          method: 'POST',
          url: '/api/auth/api-keys',
          cookies: { session: bob.session },
          headers: { 'sec-fetch-site': site },
          payload: { name: site },
        });
        expect(ok.statusCode).toBe(201);
      }
      const bearer = await t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        headers: { 'sec-fetch-site': 'cross-site', authorization: `Bearer ${bob.session}` },
        payload: { name: 'bearer' },
      });
      expect(bearer.statusCode).toBe(201);
      const read = await t.app.inject({
        method: 'GET',
        url: '/api/auth/api-keys',
        cookies: { session: bob.session },
        headers: { 'sec-fetch-site': 'cross-site' },
      });
      expect(read.statusCode).toBe(200);
    });

    it('body limit 413, malformed JSON 400, wrong-typed field 400 naming it', async () => {
      const big = await t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session: bob.session },
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'x'.repeat(70 * 1024) }),
      });
      expect(big.statusCode).toBe(413);
      const malformed = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: freshIp(),
        headers: { 'content-type': 'application/json' },
        payload: '{"email": ',
      });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json()).toEqual({ error: 'request body is not valid JSON' });
      const typed = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: freshIp(),
        payload: { email: 'a@b.c', password: 5 },
      });
      expect(typed.statusCode).toBe(400);
      expect(typed.json().error).toMatch(/^password: /);
      const missing = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        remoteAddress: freshIp(),
        payload: { password: STRONG_PASSWORD },
      });
      expect(missing.json()).toEqual({ error: 'email is required' });
    });
  });

  describe('user delete', () => {
    it('removes the account, its sessions and keys, keeps its usage rows; not yourself', async () => {
      const frank = await registerAccount(t.app, 'frank@example.test', 'Frank');
      const key = await createKey(t.app, frank.session);
      await insertUsageBatch(t.database.db, [
        {
          id: `frank-usage-${dialect}`,
          user_id: frank.id,
          user_name: 'Frank',
          source: 'apikey',
          api_key_id: key.id,
          api_key_name: 'ci-runner',
          model: 'demo',
          endpoint: '/v1/chat/completions',
          prompt_tokens: 10,
          completion_tokens: 5,
          total_tokens: 15,
          duration_ms: 3,
          created_at: clock,
          usage_origin: 'provider',
          aborted: 0,
          stream: 0,
          upstream: '',
        },
      ]);
      const byUser = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/admin/users/${frank.id}`,
        cookies: { session: alice.session },
      });
      expect(byUser.statusCode).toBe(403);
      const response = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/admin/users/${frank.id}`,
        cookies: { session: admin.session },
      });
      expect(response.statusCode).toBe(200);
      const db = t.database.db.kysely;
      expect(await db.selectFrom('users').select('id').where('id', '=', frank.id).execute()).toEqual([]);
      expect(await db.selectFrom('sessions').select('id').where('user_id', '=', frank.id).execute()).toEqual(
        [],
      );
      expect(await db.selectFrom('api_keys').select('id').where('user_id', '=', frank.id).execute()).toEqual(
        [],
      );
      const usage = await db
        .selectFrom('usage_records')
        .selectAll()
        .where('user_id', '=', frank.id)
        .execute();
      expect(usage).toHaveLength(1);
      expect(usage[0]).toMatchObject({ user_name: 'Frank', total_tokens: 15 });
      const rollups = await db
        .selectFrom('usage_rollups_hourly')
        .selectAll()
        .where('user_id', '=', frank.id)
        .execute();
      expect(rollups).toHaveLength(1);
      expect((await me({ authorization: `Bearer ${key.key}` })).statusCode).toBe(401);
      expect((await me({}, { session: frank.session })).statusCode).toBe(401);
      const again = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/admin/users/${frank.id}`,
        cookies: { session: admin.session },
      });
      expect(again.statusCode).toBe(404);
    });
  });
});
