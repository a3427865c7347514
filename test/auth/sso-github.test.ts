import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { type FakeGitHub, startFakeGitHub } from '../helpers/fake-github.ts';
import { SsoBrowser } from '../helpers/sso-browser.ts';

/**
 * "Sign in with GitHub" against a local fake of GitHub's OAuth endpoints and REST API (their base
 * URLs are settings), through keytally's real HTTP server, on both databases.
 */

describe.each(DIALECTS)('GitHub sign-in (%s)', (dialect) => {
  let github: FakeGitHub;
  const apps: TestApp[] = [];

  async function start(settings: Record<string, string> = {}) {
    const t = await startTestApp({
      dialect,
      settings: {
        githubClientId: github.clientId,
        githubClientSecret: github.clientSecret,
        githubUrl: github.url,
        githubApiUrl: github.url,
        adminEmail: 'boss@example.com',
        registrationMode: 'open',
        ...settings,
      },
    });
    apps.push(t);
    await t.listen();
    return t;
  }
  async function signIn(t: TestApp, login: string) {
    github.signedIn = login;
    const b = new SsoBrowser(t.baseUrl);
    return { b, landed: await b.signIn('/api/auth/github/login') };
  }
  const users = (t: TestApp) =>
    t.database.db.kysely.selectFrom('users').selectAll().orderBy('created_at').execute();

  beforeAll(async () => {
    github = await startFakeGitHub([
      // Every address unverified, one of them the admin email: none may count.
      {
        id: 1001,
        login: 'ghost',
        name: null,
        emails: [
          { email: 'boss@example.com', primary: true, verified: false },
          { email: 'ghost@example.com', primary: false, verified: false },
        ],
      },
      {
        id: 1002,
        login: 'octocat',
        name: 'The Octocat',
        avatar_url: 'https://avatars.example/u/1002',
        emails: [
          { email: 'octo-unverified@example.com', primary: true, verified: false },
          { email: 'Octo@Example.com', primary: false, verified: true },
        ],
      },
      {
        id: 1003,
        login: 'hubot',
        name: 'Hubot',
        emails: [{ email: 'hubot@example.com', primary: true, verified: true }],
      },
    ]);
  });
  afterAll(async () => {
    for (const t of apps) await t.close();
    await github?.close();
  });

  describe('with local accounts enabled', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await start();
    });

    it('offers GitHub in /api/auth/status and redirects to its authorize endpoint with PKCE and state', async () => {
      const b = new SsoBrowser(t.baseUrl);
      const status = await b.api<{ providers: string[]; sso: unknown[] }>('/api/auth/status');
      expect(status.body.providers).toEqual(['local', 'github']);
      expect(status.body.sso).toEqual([
        { id: 'github', label: 'GitHub', loginUrl: '/api/auth/github/login' },
      ]);
      const response = await b.request(`${t.baseUrl}/api/auth/github/login`);
      expect(response.status).toBe(307);
      const target = new URL(response.headers.get('location') ?? '');
      expect(target.origin + target.pathname).toBe(`${github.url}/login/oauth/authorize`);
      expect(Object.fromEntries(target.searchParams)).toMatchObject({
        client_id: github.clientId,
        redirect_uri: `${t.baseUrl}/api/auth/github/callback`,
        scope: 'read:user user:email',
        code_challenge_method: 'S256',
      });
      expect(target.searchParams.get('state')).toMatch(/^[\w-]{43}$/);
    });

    it('ignores unverified emails: no email, no admin, even when one of them is the admin email', async () => {
      const { b, landed } = await signIn(t, 'ghost');
      expect(landed).toBe('/app/usage');
      expect((await b.api('/api/auth/me')).body).toMatchObject({
        email: '',
        name: 'ghost',
        role: 'user',
        provider: 'github',
      });
    });

    it('takes the first verified email when the primary one is not verified; first verified user is admin', async () => {
      const { b, landed } = await signIn(t, 'octocat');
      expect(landed).toBe('/app/usage');
      expect((await b.api('/api/auth/me')).body).toMatchObject({
        email: 'octo@example.com',
        name: 'The Octocat',
        avatarUrl: 'https://avatars.example/u/1002',
        role: 'admin',
        provider: 'github',
        source: 'web',
      });
      const identity = await t.database.db.kysely
        .selectFrom('user_identities')
        .selectAll()
        .where('subject', '=', '1002')
        .executeTakeFirstOrThrow();
      expect(identity).toMatchObject({ provider: 'github', issuer: github.url, email: 'octo@example.com' });
    });

    it('a failed /user call is a provider error, never an account (the reference makes subject "0")', async () => {
      const before = await users(t);
      github.userStatus = 500;
      try {
        const { b, landed } = await signIn(t, 'hubot');
        expect(landed).toBe('/login?error=provider_error');
        expect((await b.api('/api/auth/me')).status).toBe(401);
      } finally {
        github.userStatus = undefined;
      }
      expect(await users(t)).toEqual(before);
      expect(before.some((user) => user.subject === '0')).toBe(false);
      // GitHub is reachable again: the same user signs in normally.
      expect((await signIn(t, 'hubot')).landed).toBe('/app/usage');
    });

    it('refuses a callback whose state does not match the cookie', async () => {
      const b = new SsoBrowser(t.baseUrl);
      await b.request(`${t.baseUrl}/api/auth/github/login`);
      const response = await b.request(`${t.baseUrl}/api/auth/github/callback?code=stolen&state=forged`);
      expect(response.headers.get('location')).toBe('/login?error=state_mismatch');
    });
  });

  describe('with KEYTALLY_DISABLE_LOCAL_AUTH=1', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await start({ disableLocalAuth: '1' });
    });

    it('answers 403 to local login and registration and lists only single sign-on', async () => {
      const b = new SsoBrowser(t.baseUrl);
      const json = { 'content-type': 'application/json' };
      const register = await b.api<{ error: string }>('/api/auth/register', {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email: 'x@example.com', password: 'correct horse battery staple', name: 'X' }),
      });
      expect(register.status).toBe(403);
      expect(register.body.error).toMatch(/local sign-in is disabled/);
      const login = await b.api('/api/auth/login', {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email: 'x@example.com', password: 'correct horse battery staple' }),
      });
      expect(login.status).toBe(403);
      expect(await users(t)).toEqual([]);
      const status = await b.api<{ providers: string[] }>('/api/auth/status');
      expect(status.body.providers).toEqual(['github']);
      expect((await signIn(t, 'hubot')).landed).toBe('/app/usage');
    });
  });
});
