import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/server/auth/hash.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { type Account, cookieValue, createKey, freshIp, login, registerAccount } from './support.ts';

const LEGACY_KEY = 'legacy-shared-key-0123456789';
const ADMIN_EMAIL = 'Boss@Example.test';
const HOUR = 3_600_000;
const DAY = 86_400_000;

describe.each(DIALECTS)('identity: credentials, admin guard, API keys on %s', (dialect) => {
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
          error: { code: null, message: 'An authentication key is required', type: 'invalid_request_error' },
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
      const key = await createKey(t.app, carol.session, { name: 'admin-key', scopes: ['admin'] });
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
      // a session has every right of its owner, so only a key with all of them may start one
      const key = await createKey(t.app, alice.session, {
        name: 'full',
        scopes: ['inference', 'usage', 'keys'],
      });
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
});
