import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/server/auth/hash.ts';
import { hashPassword } from '../../src/server/auth/password.ts';
import { deleteExpiredSessions } from '../../src/server/auth/sessions.repository.ts';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createUser } from '../helpers/factories.ts';
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

describe.each(DIALECTS)('identity: sessions, accounts, protection, user delete on %s', (dialect) => {
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

  /**
   * A fresh session for an account, via token-login with one of its keys (no password hash); the
   * key needs every scope of its owner to start a session.
   */
  const sessionFor = async (account: Account): Promise<string> => {
    const { key } = await createKey(t.app, account.session, {
      name: 'session-maker',
      scopes: ['inference', 'usage', 'keys'],
    });
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/auth/token-login',
      remoteAddress: freshIp(),
      payload: { token: key },
    });
    return cookieValue(response, 'session') ?? '';
  };

  const me = (headers: Record<string, string>, cookies?: Record<string, string>) =>
    t.app.inject({ method: 'GET', url: '/api/auth/me', headers, cookies });

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
      const session = await sessionFor(bob);
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
      const session = await sessionFor(bob);
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
      const one = await sessionFor(bob);
      const two = await sessionFor(bob);
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
    it('limits register, login and token-login to 5 a minute per IP with Retry-After; resets after a minute', async () => {
      // Bodies that fail validation cost no password hash, but every attempt counts.
      for (const url of ['/api/auth/register', '/api/auth/login', '/api/auth/token-login']) {
        const ip = freshIp();
        const attempt = () => t.app.inject({ method: 'POST', url, remoteAddress: ip, payload: {} });
        for (let i = 0; i < 5; i += 1) expect((await attempt()).statusCode, url).toBe(400);
        const limited = await attempt();
        expect(limited.statusCode, url).toBe(429);
        expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
        // another address is unaffected
        const other = await t.app.inject({ method: 'POST', url, remoteAddress: freshIp(), payload: {} });
        expect(other.statusCode, url).toBe(400);
        const start = clock;
        clock = start + 60_001;
        try {
          expect((await attempt()).statusCode, url).toBe(400);
        } finally {
          clock = start;
        }
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
