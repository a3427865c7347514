import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.ts';
import { freePort } from '../helpers/process.ts';
import { SsoBrowser } from '../helpers/sso-browser.ts';

/**
 * Single sign-on with OpenID Connect against a real provider in-process (oidc-provider), through
 * keytally's real HTTP server, on both databases: identity rules, gating, state, ID token checks.
 */

const USERS = [
  // Claims the admin email but the provider does not vouch for it.
  { sub: 'mallory', email: 'boss@example.com', email_verified: false, name: 'Mallory' },
  { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Provider' },
  { sub: 'bob', email: 'bob@example.com', email_verified: true, name: 'Bob' },
  { sub: 'carol', email: 'carol@example.com', email_verified: true, name: 'Carol' },
  { sub: 'dana', email: 'dana@example.com', email_verified: true, name: 'Dana at IdP' },
  { sub: 'erin', email: 'dana@example.com', email_verified: false, name: 'Erin' },
];

describe.each(DIALECTS)('OpenID Connect sign-in (%s)', (dialect) => {
  let idp: TestOidcProvider;
  const apps: TestApp[] = [];

  async function start(
    settings: Record<string, string> = {},
    database?: TestApp['database'],
    logLines?: string[],
  ) {
    const t = await startTestApp({
      dialect,
      database,
      ...(logLines ? { logDestination: { write: (line: string) => void logLines.push(line) } } : {}),
      settings: {
        oidcIssuer: idp.issuer,
        oidcClientId: idp.clientId,
        oidcClientSecret: idp.clientSecret,
        oidcName: 'Test IdP',
        adminEmail: 'boss@example.com',
        registrationMode: 'approval',
        ...settings,
      },
    });
    apps.push(t);
    await t.listen();
    return t;
  }
  const browser = (t: TestApp) => new SsoBrowser(t.baseUrl);
  const signIn = async (t: TestApp, login: string, query = '') => {
    const b = browser(t);
    const landed = await b.signIn(`/api/auth/oidc/login${query}`, login);
    return { b, landed };
  };
  const userCount = async (t: TestApp) =>
    Number(
      (
        await t.database.db.kysely
          .selectFrom('users')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  beforeAll(async () => {
    idp = await startOidcProvider({ users: USERS });
  });
  afterAll(async () => {
    for (const t of apps) await t.close();
    await idp?.close();
  });

  describe('a fresh server in approval mode', () => {
    let t: TestApp;
    const logLines: string[] = [];
    beforeAll(async () => {
      t = await start({ logLevel: 'info' }, undefined, logLines);
    });

    it('lists the provider in /api/auth/status once discovery succeeded', async () => {
      // A login waits for discovery; the status is built from providers that initialised.
      await browser(t).request(`${t.baseUrl}/api/auth/oidc/login`);
      const status = await browser(t).api<{ providers: string[]; sso: unknown[] }>('/api/auth/status');
      expect(status.body.providers).toEqual(['local', 'oidc']);
      expect(status.body.sso).toEqual([{ id: 'oidc', label: 'Test IdP', loginUrl: '/api/auth/oidc/login' }]);
    });

    it('the login redirect carries PKCE (S256), state and nonce, and sets a per-provider state cookie', async () => {
      const b = browser(t);
      const response = await b.request(`${t.baseUrl}/api/auth/oidc/login`);
      expect(response.status).toBe(307);
      const target = new URL(response.headers.get('location') ?? '');
      expect(target.origin).toBe(idp.issuer);
      const params = target.searchParams;
      expect(params.get('code_challenge_method')).toBe('S256');
      expect(params.get('code_challenge')).toMatch(/^[\w-]{43}$/);
      expect(params.get('state')).toMatch(/^[\w-]{43}$/);
      expect(params.get('nonce')).toMatch(/^[\w-]{43}$/);
      expect(params.get('redirect_uri')).toBe(`${t.baseUrl}/api/auth/oidc/callback`);
      expect(params.get('scope')).toBe('openid email profile');
      const setCookie = response.headers.getSetCookie().join('\n');
      expect(setCookie).toMatch(
        /kt_sso_oidc=[^;]+; Max-Age=600; Path=\/api\/auth\/oidc\/callback; HttpOnly; SameSite=Lax/,
      );
      // Sealed: neither the state nor the verifier is readable in the cookie.
      expect(setCookie).not.toContain(params.get('state'));
    });

    it('an unverified email never gets admin, not even as the first user with the admin email', async () => {
      const { landed } = await signIn(t, 'mallory');
      expect(landed).toBe('/login?error=pending_approval');
      const row = await t.database.db.kysely.selectFrom('users').selectAll().executeTakeFirstOrThrow();
      expect(row).toMatchObject({ role: 'user', status: 'pending', provider: 'oidc', email: '' });
      // Still pending on the next login; still not admin.
      expect((await signIn(t, 'mallory')).landed).toBe('/login?error=pending_approval');
    });

    it('the first user with a verified email becomes admin, ungated, with a normal web session', async () => {
      const { b, landed } = await signIn(t, 'alice');
      expect(landed).toBe('/app/usage');
      const me = await b.api<Record<string, unknown>>('/api/auth/me');
      expect(me.body).toMatchObject({
        email: 'alice@example.com',
        name: 'Alice Provider',
        role: 'admin',
        provider: 'oidc',
        status: 'active',
        source: 'web',
      });
      // Chat traffic through this session is `web` usage.
      const chat = await b.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(chat.status).toBe(200);
      await t.recorder.flushNow();
      const usage = await t.database.db.kysely.selectFrom('usage_records').selectAll().execute();
      expect(usage.map((row) => [row.user_id, row.source])).toEqual([[me.body.id, 'web']]);
      // Logout ends it like a local session.
      expect((await b.api('/api/auth/logout', { method: 'POST' })).status).toBe(200);
      expect((await b.api('/api/auth/me')).status).toBe(401);
    });

    it('approval mode honours an invite; without one the account waits', async () => {
      const admin = (await signIn(t, 'alice')).b;
      const invite = await admin.api<{ code: string }>('/api/auth/admin/invites', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(invite.status).toBe(201);
      const bob = await signIn(t, 'bob', `?invite_code=${invite.body.code}`);
      expect(bob.landed).toBe('/app/usage');
      const bobId = (await bob.b.api<{ id: string }>('/api/auth/me')).body.id;
      expect((await signIn(t, 'carol')).landed).toBe('/login?error=pending_approval');
      const carol = await t.database.db.kysely
        .selectFrom('users')
        .selectAll()
        .where('email', '=', 'carol@example.com')
        .executeTakeFirstOrThrow();
      expect(carol.status).toBe('pending');
      // Disabled accounts are sent back to the login page with a reason, not a raw 403.
      expect(
        (
          await admin.api(`/api/auth/admin/users/${carol.id}/status`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ status: 'disabled' }),
          })
        ).status,
      ).toBe(200);
      expect((await signIn(t, 'carol')).landed).toBe('/login?error=account_disabled');
      // Revocation reaches single sign-on sessions like local ones: disabling bob ends his.
      await admin.api(`/api/auth/admin/users/${bobId}/status`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'disabled' }),
      });
      expect((await bob.b.api('/api/auth/me')).status).toBe(401);
      await admin.api(`/api/auth/admin/users/${bobId}/status`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'active' }),
      });
      // Deleting an account deletes its identities: the next login is a new (pending) account.
      expect((await admin.api(`/api/auth/admin/users/${carol.id}`, { method: 'DELETE' })).status).toBe(200);
      const identities = await t.database.db.kysely
        .selectFrom('user_identities')
        .selectAll()
        .where('user_id', '=', carol.id)
        .execute();
      expect(identities).toEqual([]);
      expect((await signIn(t, 'carol')).landed).toBe('/login?error=pending_approval');
    });

    it('keeps a name the user edited on later logins, and follows the provider where it was not edited', async () => {
      const alice = (await signIn(t, 'alice')).b;
      await alice.api('/api/auth/profile', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Alice (edited)' }),
      });
      idp.users.set('alice', { ...USERS[1]!, name: 'Alice Renamed At IdP' });
      idp.users.set('bob', { ...USERS[2]!, name: 'Robert' });
      try {
        const again = (await signIn(t, 'alice')).b;
        expect((await again.api<{ name: string }>('/api/auth/me')).body.name).toBe('Alice (edited)');
        const bob = (await signIn(t, 'bob')).b;
        expect((await bob.api<{ name: string }>('/api/auth/me')).body.name).toBe('Robert');
      } finally {
        idp.users.set('alice', USERS[1]!);
        idp.users.set('bob', USERS[2]!);
      }
    });

    it('refuses a forged state and a replayed callback', async () => {
      const b = browser(t);
      await b.request(`${t.baseUrl}/api/auth/oidc/login`);
      const forged = await b.request(`${t.baseUrl}/api/auth/oidc/callback?code=abc&state=forged`);
      expect(forged.status).toBe(302);
      expect(forged.headers.get('location')).toBe('/login?error=state_mismatch');

      const { b: alice, landed } = await signIn(t, 'alice');
      expect(landed).toBe('/app/usage');
      const sessionsBefore = await t.database.db.kysely.selectFrom('sessions').selectAll().execute();
      const replay = await alice.request(alice.lastCallback ?? '');
      expect(replay.headers.get('location')).toBe('/login?error=state_mismatch');
      // Even with the state cookie copied back (an attacker holding both), the spent code fails.
      const sessionsAfter = await t.database.db.kysely.selectFrom('sessions').selectAll().execute();
      expect(sessionsAfter.length).toBe(sessionsBefore.length);
    });

    it('refuses an ID token whose payload was changed under its signature', async () => {
      const before = await userCount(t);
      idp.tamperIdToken = true;
      try {
        const { b, landed } = await signIn(t, 'dana');
        expect(landed).toBe('/login?error=provider_error');
        expect((await b.api('/api/auth/me')).status).toBe(401);
      } finally {
        idp.tamperIdToken = false;
      }
      expect(await userCount(t)).toBe(before);
      // The cause is logged; no part of the token is.
      const failure = logLines.find((line) => line.includes('single sign-on failed'));
      expect(failure).toBeDefined();
      const [header, payload, signature] = (idp.lastIdToken ?? '..').split('.');
      for (const part of [header, payload, signature]) {
        expect(part?.length).toBeGreaterThan(10);
        expect(logLines.join('\n')).not.toContain(part);
      }
    });

    it('sends the user back to the login page when they decline at the provider', async () => {
      const b = browser(t);
      const start = await b.request(`${t.baseUrl}/api/auth/oidc/login`);
      const authorize = new URL(start.headers.get('location') ?? '');
      // What the provider sends after a refusal: error=access_denied with the same state.
      const callback = new URL(`${t.baseUrl}/api/auth/oidc/callback`);
      callback.searchParams.set('error', 'access_denied');
      callback.searchParams.set('state', authorize.searchParams.get('state') ?? '');
      callback.searchParams.set('iss', idp.issuer);
      const response = await b.request(callback.href);
      expect(response.headers.get('location')).toBe('/login?error=access_denied');
    });
  });

  describe('linking a local account', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await start({ registrationMode: 'open' });
      const register = await fetch(`${t.baseUrl}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email: 'dana@example.com',
          password: 'correct horse battery staple',
          name: 'Dana Local',
        }),
      });
      expect(register.status).toBe(201);
    });

    it('an unverified email with the same address gets an account of its own, never the local one', async () => {
      const { b, landed } = await signIn(t, 'erin');
      expect(landed).toBe('/app/usage');
      expect((await b.api<{ name: string; provider: string }>('/api/auth/me')).body).toMatchObject({
        name: 'Erin',
        provider: 'oidc',
        email: '',
      });
    });

    it('a verified email of a local account is linked only after its password is entered', async () => {
      const { b, landed } = await signIn(t, 'dana');
      expect(landed).toBe('/login?link=oidc');
      expect((await b.api('/api/auth/me')).status).toBe(401);
      const pending = await b.api('/api/auth/sso/link');
      expect(pending.body).toEqual({
        provider: 'oidc',
        label: 'Test IdP',
        email: 'dana@example.com',
        name: 'Dana at IdP',
      });

      // Another browser, without the pending link, cannot link anything.
      const stranger = browser(t);
      const post = (client: SsoBrowser, password: string) =>
        client.api('/api/auth/sso/link', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ password }),
        });
      expect((await post(stranger, 'correct horse battery staple')).status).toBe(404);
      expect((await post(b, 'wrong password entirely')).status).toBe(401);
      const linked = await post(b, 'correct horse battery staple');
      expect(linked.status).toBe(200);
      const me = await b.api<{ id: string; name: string; provider: string }>('/api/auth/me');
      expect(me.body).toMatchObject({ name: 'Dana Local', provider: 'local' });

      // From now on the provider signs into the local account, which keeps its name and password.
      const later = await signIn(t, 'dana');
      expect(later.landed).toBe('/app/usage');
      expect((await later.b.api<{ id: string; name: string }>('/api/auth/me')).body).toMatchObject({
        id: me.body.id,
        name: 'Dana Local',
      });
      const identities = await later.b.api<{ identities: { provider: string; email: string }[] }>(
        '/api/auth/identities',
      );
      expect(identities.body.identities).toMatchObject([
        { provider: 'oidc', email: 'dana@example.com', label: 'Test IdP' },
      ]);
      const local = await fetch(`${t.baseUrl}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'dana@example.com', password: 'correct horse battery staple' }),
      });
      expect(local.status).toBe(200);
    });
  });

  describe('invite-only mode', () => {
    it('refuses a new identity without a code or with a bad one, and accepts one with a valid code', async () => {
      const t = await start({ registrationMode: 'invite' });
      // The bootstrap admin (verified, no admin yet) needs no invite.
      const admin = await signIn(t, 'alice');
      expect(admin.landed).toBe('/app/usage');
      const before = await userCount(t);
      expect((await signIn(t, 'bob')).landed).toBe('/login?error=invite_required');
      expect((await signIn(t, 'bob', '?invite_code=not-a-real-code')).landed).toBe(
        '/login?error=invalid_invite',
      );
      expect(await userCount(t)).toBe(before);
      const invite = await admin.b.api<{ code: string }>('/api/auth/admin/invites', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      const bob = await signIn(t, 'bob', `?invite_code=${invite.body.code}`);
      expect(bob.landed).toBe('/app/usage');
      expect((await bob.b.api<{ role: string; status: string }>('/api/auth/me')).body).toMatchObject({
        role: 'user',
        status: 'active',
      });
      // The code is spent.
      expect((await signIn(t, 'carol', `?invite_code=${invite.body.code}`)).landed).toBe(
        '/login?error=invalid_invite',
      );
    });
  });

  it('keys identities on the issuer too: the same subject at another issuer is another account', async () => {
    const first = await start({ registrationMode: 'open' });
    const alice = await signIn(first, 'alice');
    const aliceId = (await alice.b.api<{ id: string }>('/api/auth/me')).body.id;
    const otherIdp = await startOidcProvider({
      users: [{ sub: 'alice', email: 'alice@other.example', email_verified: true }],
    });
    try {
      const second = await start(
        {
          registrationMode: 'open',
          oidcIssuer: otherIdp.issuer,
          oidcClientId: otherIdp.clientId,
          oidcClientSecret: otherIdp.clientSecret,
        },
        first.database,
      );
      const again = await signIn(second, 'alice');
      expect(again.landed).toBe('/app/usage');
      const me = (await again.b.api<{ id: string; email: string }>('/api/auth/me')).body;
      expect(me.id).not.toBe(aliceId);
      expect(me.email).toBe('alice@other.example');
    } finally {
      await otherIdp.close();
    }
  });

  it('logs a failed discovery, leaves oidc out of the status, and retries when someone signs in', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const t = await startTestApp({
      dialect,
      settings: {
        oidcIssuer: `http://127.0.0.1:${port}`,
        oidcClientId: 'keytally-test',
        oidcClientSecret: 'keytally-test-client-secret-0123456789',
        registrationMode: 'open',
        logLevel: 'warn',
      },
      logDestination: { write: (line) => void lines.push(line) },
    });
    apps.push(t);
    await t.listen();
    const b = browser(t);
    expect(await b.signIn('/api/auth/oidc/login')).toBe('/login?error=provider_unavailable');
    expect(lines.some((line) => line.includes('OpenID Connect discovery failed'))).toBe(true);
    expect((await b.api<{ providers: string[]; sso: unknown[] }>('/api/auth/status')).body).toMatchObject({
      providers: ['local'],
      sso: [],
    });
    const late = await startOidcProvider({ users: USERS, port });
    try {
      expect(await b.signIn('/api/auth/oidc/login', 'alice')).toBe('/app/usage');
      expect((await b.api<{ providers: string[] }>('/api/auth/status')).body.providers).toEqual([
        'local',
        'oidc',
      ]);
    } finally {
      await late.close();
    }
  });

  it('limits callbacks to 60 a minute per client (socket) address, whatever X-Forwarded-For says', async () => {
    const t = await start({ registrationMode: 'open' });
    const b = browser(t);
    const codes: string[] = [];
    for (let i = 0; i < 61; i++) {
      // A made-up X-Forwarded-For per request must not buy a fresh window (the reference's can).
      const response = await b.request(`${t.baseUrl}/api/auth/oidc/callback?code=x&state=y`, {
        headers: { 'x-forwarded-for': `198.51.100.${i}`, 'x-real-ip': `198.51.100.${i}` },
      });
      codes.push(response.headers.get('location') ?? '');
    }
    expect(codes.slice(0, 60).every((location) => location === '/login?error=state_mismatch')).toBe(true);
    expect(codes[60]).toBe('/login?error=rate_limited');
  });
});
