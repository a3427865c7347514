import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub } from '../test/helpers/fake-github.ts';
import { startOidcProvider, type TestOidcProvider } from '../test/helpers/oidc-provider.ts';
import { launchBrowser, newPage, PASSWORD, type Server, screenshot, startServer } from './helpers.ts';

const LEGACY_KEY = 'legacy-shared-key-for-the-sso-e2e-test';

/**
 * Single sign-on in a real browser against a real OpenID provider (oidc-provider, in this process):
 * the login page's button, the provider's own login and consent pages, and keytally's answers to
 * every outcome: admin only with a verified email, invite-only gating, forged and replayed state,
 * a tampered ID token, linking a local account, and a server with local sign-in turned off.
 */
describe('single sign-on in the browser', { timeout: 90_000 }, () => {
  let idp: TestOidcProvider;
  let server: Server;
  let browser: Browser;
  const pages: Page[] = [];

  const oidcEnv = () => ({
    KEYTALLY_OIDC_ISSUER: idp.issuer,
    KEYTALLY_OIDC_CLIENT_ID: idp.clientId,
    KEYTALLY_OIDC_CLIENT_SECRET: idp.clientSecret,
    KEYTALLY_OIDC_NAME: 'Test IdP',
  });

  beforeAll(async () => {
    idp = await startOidcProvider({
      users: [
        // Claims the admin email, unverified.
        { sub: 'mallory', email: 'boss@example.com', email_verified: false, name: 'Mallory' },
        { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice' },
        { sub: 'bob', email: 'bob@example.com', email_verified: true, name: 'Bob' },
        { sub: 'dana', email: 'dana@example.com', email_verified: true, name: 'Dana at IdP' },
      ],
    });
    [server, browser] = await Promise.all([
      startServer({
        KEYTALLY_REGISTRATION_MODE: 'invite',
        KEYTALLY_ADMIN_EMAIL: 'boss@example.com',
        KEYTALLY_API_KEYS: LEGACY_KEY,
        ...oidcEnv(),
      }),
      launchBrowser(),
    ]);
  });
  afterEach(async (test) => {
    if (test.task.result?.state === 'fail') {
      for (const [index, page] of pages.entries())
        if (!page.isClosed()) await screenshot(page, `failed-sso-${index}-${test.task.name.slice(0, 30)}`);
    }
    for (const page of pages.splice(0)) await page.context().close();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await idp?.close();
  });

  /** A fresh browser profile (no keytally session, no provider session) on `target`. */
  async function visitor(target: Server = server): Promise<Page> {
    const { page } = await newPage(browser, target);
    pages.push(page);
    return page;
  }

  /**
   * The provider's own pages: its login form (skipped when it remembers the user), then its consent
   * page when it asks; done once the browser is back at keytally.
   */
  async function signInAtProvider(page: Page, login: string): Promise<void> {
    for (let step = 0; step < 4; step++) {
      await page.waitForURL((url) => url.origin !== idp.issuer || url.pathname.startsWith('/interaction/'));
      const here = page.url();
      if (new URL(here).origin !== idp.issuer) return;
      if ((await page.locator('input[name="login"]').count()) > 0) {
        await page.locator('input[name="login"]').fill(login);
        await page.locator('input[name="password"]').fill('any password');
        await page.getByRole('button', { name: 'Sign-in' }).click();
      } else {
        await page.getByRole('button', { name: 'Continue' }).click();
      }
      await page.waitForURL((url) => url.href !== here);
    }
    throw new Error(`still at the provider: ${page.url()}`);
  }

  async function me(page: Page): Promise<{ http: number; role?: string; email?: string; name?: string }> {
    return page.evaluate(async () => {
      const response = await fetch('/api/auth/me');
      return { ...(response.ok ? await response.json() : {}), http: response.status };
    });
  }

  async function createInvite(): Promise<string> {
    const response = await fetch(`${server.baseUrl}/api/auth/admin/invites`, {
      method: 'POST',
      headers: { authorization: `Bearer ${LEGACY_KEY}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { code: string }).code;
  }

  it('invite-only mode refuses a new account without a code; an unverified email gets no admin even with the admin email', async () => {
    const page = await visitor();
    await page.goto('/login');
    const button = page.getByRole('link', { name: 'Sign in with Test IdP' });
    await button.waitFor();
    await screenshot(page, '60-login-with-sso');
    await button.click();
    await signInAtProvider(page, 'mallory');
    await page.getByText('A valid invite code is required to create an account').waitFor();
    expect(new URL(page.url()).pathname).toBe('/login');
    await screenshot(page, '61-sso-invite-required');

    await page.getByLabel('Invite code (needed for a new account)').fill(await createInvite());
    await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
    // The provider remembers mallory (no login form this time); keytally now creates the account.
    await signInAtProvider(page, 'mallory');
    await page.waitForURL((url) => url.pathname.startsWith('/app/'));
    expect(await me(page)).toMatchObject({ http: 200, role: 'user', email: '' });
    expect(await page.getByRole('link', { name: 'Users', exact: true }).count()).toBe(0);
  });

  it('the first user with a verified email becomes admin, without an invite', async () => {
    const page = await visitor();
    await page.goto('/login');
    await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
    await signInAtProvider(page, 'alice');
    await page.getByRole('link', { name: 'Users', exact: true }).waitFor();
    expect(await me(page)).toMatchObject({
      http: 200,
      role: 'admin',
      email: 'alice@example.com',
      name: 'Alice',
    });
    await screenshot(page, '62-sso-admin-signed-in');
  });

  it('a forged state and a replayed callback land on the login page, signed out', async () => {
    const page = await visitor();
    await page.goto('/api/auth/oidc/callback?code=stolen-code&state=forged-state');
    await page.getByText('That sign-in attempt expired or did not start in this browser').waitFor();
    expect(await me(page)).toMatchObject({ http: 401 });

    // A real sign-in, whose callback URL (code + state) someone captured...
    const victim = await visitor();
    let callback = '';
    victim.on('request', (request) => {
      if (request.url().includes('/api/auth/oidc/callback')) callback = request.url();
    });
    await victim.goto('/login');
    await victim.getByRole('link', { name: 'Sign in with Test IdP' }).click();
    await signInAtProvider(victim, 'alice');
    await victim.waitForURL((url) => url.pathname.startsWith('/app/'));
    expect(callback).toContain('state=');
    // ...replayed in another browser: no state cookie there, so no session.
    const attacker = await visitor();
    await attacker.goto(callback);
    await attacker.getByText('That sign-in attempt expired or did not start in this browser').waitFor();
    expect(await me(attacker)).toMatchObject({ http: 401 });
    await screenshot(attacker, '63-sso-replayed-state');
  });

  it('a tampered ID token is refused', async () => {
    idp.tamperIdToken = true;
    try {
      const page = await visitor();
      await page.goto('/login');
      await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
      await signInAtProvider(page, 'bob');
      await page.getByText('The sign-in provider did not confirm who you are').waitFor();
      expect(await me(page)).toMatchObject({ http: 401 });
      await screenshot(page, '64-sso-tampered-token');
    } finally {
      idp.tamperIdToken = false;
    }
  });

  it('a local account with the same verified email is linked only after its password is entered', async () => {
    const register = await fetch(`${server.baseUrl}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        email: 'dana@example.com',
        password: PASSWORD,
        name: 'Dana',
        inviteCode: await createInvite(),
      }),
    });
    expect(register.status).toBe(201);
    const page = await visitor();
    await page.goto('/login');
    await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
    await signInAtProvider(page, 'dana');
    await page.getByRole('heading', { name: 'Link your account' }).waitFor();
    expect(await me(page)).toMatchObject({ http: 401 });
    await screenshot(page, '65-sso-link');
    await page.getByLabel('Password of dana@example.com').fill('not the password at all');
    await page.getByRole('button', { name: 'Link Test IdP and sign in' }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('Password of dana@example.com').fill(PASSWORD);
    await page.getByRole('button', { name: 'Link Test IdP and sign in' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/app/'));
    expect(await me(page)).toMatchObject({ http: 200, name: 'Dana', email: 'dana@example.com' });
    await page.goto('/app/account?tab=security');
    await page.getByTestId('sign-in-methods').getByText('Test IdP').waitFor();
    await screenshot(page, '66-sso-sign-in-methods');
  });

  it('with KEYTALLY_DISABLE_LOCAL_AUTH=1 the page offers single sign-on only and local sign-in answers 403', async () => {
    const github = await startFakeGitHub([
      {
        id: 583231,
        login: 'octocat',
        name: 'The Octocat',
        emails: [{ email: 'octocat@example.com', primary: true, verified: true }],
      },
    ]);
    const ssoOnly = await startServer({
      KEYTALLY_DISABLE_LOCAL_AUTH: '1',
      KEYTALLY_REGISTRATION_MODE: 'approval',
      KEYTALLY_GITHUB_CLIENT_ID: github.clientId,
      KEYTALLY_GITHUB_CLIENT_SECRET: github.clientSecret,
      KEYTALLY_GITHUB_URL: github.url,
      KEYTALLY_GITHUB_API_URL: github.url,
      ...oidcEnv(),
    });
    try {
      const page = await visitor(ssoOnly);
      await page.goto('/login');
      await page.getByRole('link', { name: 'Sign in with Test IdP' }).waitFor();
      await page.getByRole('link', { name: 'Sign in with GitHub' }).waitFor();
      expect(await page.locator('input[type="password"]').count()).toBe(0);
      expect(await page.getByRole('tab').count()).toBe(0);
      await screenshot(page, '67-sso-only');
      for (const path of ['/api/auth/login', '/api/auth/register']) {
        const response = await fetch(`${ssoOnly.baseUrl}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'x@example.com', password: PASSWORD, name: 'X' }),
        });
        expect(response.status).toBe(403);
      }
      // GitHub (a local fake): the first verified user is the admin.
      await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
      await page.getByRole('link', { name: 'Users', exact: true }).waitFor();
      expect(await me(page)).toMatchObject({ http: 200, role: 'admin', email: 'octocat@example.com' });

      // The next person waits for approval and is told so on the login page.
      const next = await visitor(ssoOnly);
      await next.goto('/login');
      await next.getByRole('link', { name: 'Sign in with Test IdP' }).click();
      await signInAtProvider(next, 'bob');
      await next.getByText('Your account is waiting for an administrator to approve it.').waitFor();
      expect(await me(next)).toMatchObject({ http: 401 });
    } finally {
      await ssoOnly.stop();
      await github.close();
    }
  });
});
