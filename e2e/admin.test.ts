import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiClient,
  chatWith,
  launchBrowser,
  newPage,
  PASSWORD,
  type Server,
  screenshot,
  startServer,
} from './helpers.ts';

const LEGACY_KEY = 'legacy-shared-key-for-the-e2e-test';
const POLL = { timeout: 10_000, interval: 100 };

/**
 * Registration in approval mode, the admin Users page (approve, promote/demote, reset password,
 * a user's keys, invites, delete) and token login with a legacy key.
 */
describe('sign-in flows and the admin Users page', { timeout: 60_000 }, () => {
  let server: Server;
  let browser: Browser;
  let adminPage: Page;
  let visitor: Page;
  let admin: ApiClient;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startServer({ KEYTALLY_REGISTRATION_MODE: 'approval', KEYTALLY_API_KEYS: LEGACY_KEY }),
      launchBrowser(),
    ]);
    admin = await ApiClient.register(server.baseUrl, 'root@example.com', 'Root');
    const { context } = await newPage(browser, server);
    await context.addCookies([
      { name: 'session', value: admin.cookie.slice('session='.length), url: server.baseUrl },
    ]);
    adminPage = await context.newPage();
    ({ page: visitor } = await newPage(browser, server));
  });
  afterEach(async (test) => {
    if (test.task.result?.state !== 'fail') return;
    for (const [name, page] of [
      ['admin', adminPage],
      ['visitor', visitor],
    ] as const)
      if (page && !page.isClosed()) await screenshot(page, `failed-${name}-${test.task.name.slice(0, 30)}`);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const userRow = (email: string) => adminPage.locator('[data-testid="admin-user-row"]', { hasText: email });

  it('registering in approval mode says the account waits for approval; login is refused until then', async () => {
    await visitor.goto('/');
    await visitor.getByRole('tab', { name: 'Register' }).click();
    await visitor.getByText("New accounts need an administrator's approval", { exact: false }).waitFor();
    await visitor.getByLabel('Name').fill('Dana');
    await visitor.getByLabel('Email').fill('dana@example.com');
    await visitor.getByLabel('Password').fill(PASSWORD);
    await visitor.getByRole('button', { name: 'Create account' }).click();
    await visitor.getByText('waiting for an administrator to approve it').waitFor();
    await screenshot(visitor, '20-register-pending');

    await visitor.goto('/');
    await visitor.getByLabel('Email').fill('dana@example.com');
    await visitor.getByLabel('Password').fill(PASSWORD);
    await visitor.getByRole('button', { name: 'Sign in', exact: true }).click();
    await visitor.getByRole('alert').waitFor();
    expect(new URL(visitor.url()).pathname).toBe('/login');
  });

  it('the admin approves, promotes and demotes the user; the user then signs in', async () => {
    await adminPage.goto('/app/users');
    const row = userRow('dana@example.com');
    await row.getByText('pending').waitFor();
    await screenshot(adminPage, '21-users-pending');
    await row.getByRole('button', { name: 'Approve' }).click();
    await row.getByText('active').waitFor();
    await row.getByRole('button', { name: 'Promote' }).click();
    await row.getByText('admin', { exact: true }).waitFor();
    await row.getByRole('button', { name: 'Demote' }).click();
    await row.getByText('user', { exact: true }).waitFor();

    await adminPage.getByLabel('Search users').fill('dana');
    await expect.poll(async () => adminPage.locator('[data-testid="admin-user-row"]').count(), POLL).toBe(1);
    await adminPage.getByLabel('Search users').fill('');

    await visitor.getByRole('button', { name: 'Sign in', exact: true }).click();
    await visitor.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
    expect(await visitor.getByRole('link', { name: 'Users', exact: true }).count()).toBe(0);
  });

  it('the admin resets the password, sees and revokes the user’s key, and the key gets 401', async () => {
    const dana = new ApiClient(server.baseUrl);
    await dana.call('POST', '/api/auth/login', { email: 'dana@example.com', password: PASSWORD });
    const key = await dana.createKey('dana-script');
    expect((await chatWith(server.baseUrl, { authorization: `Bearer ${key.key}` }, 'hi')).status).toBe(200);

    const row = userRow('dana@example.com');
    await row.getByRole('button', { name: 'Reset password' }).click();
    const dialog = adminPage.getByRole('dialog', { name: /Reset password/ });
    await dialog.getByLabel('New password').fill('a brand new passphrase 77');
    await dialog.getByRole('button', { name: 'Reset password' }).click();
    await adminPage.getByText('Password reset').waitFor();
    const relogin = new ApiClient(server.baseUrl);
    await relogin.call('POST', '/api/auth/login', {
      email: 'dana@example.com',
      password: 'a brand new passphrase 77',
    });

    await row.getByRole('button', { name: /API keys of Dana/ }).click();
    const keysCard = adminPage.getByRole('region', { name: 'API keys of Dana' });
    await keysCard.getByText('dana-script', { exact: true }).waitFor();
    await keysCard.getByRole('button', { name: 'Revoke dana-script' }).click();
    await adminPage
      .getByRole('dialog', { name: 'Revoke API key' })
      .getByRole('button', { name: 'Revoke' })
      .click();
    await keysCard.getByText('revoked').waitFor();
    expect((await chatWith(server.baseUrl, { authorization: `Bearer ${key.key}` }, 'hi')).status).toBe(401);
    await screenshot(adminPage, '22-user-keys');
  });

  it('invites: create one, see its code once and in the list', async () => {
    await adminPage.getByRole('tab', { name: 'Invites' }).click();
    await adminPage.getByRole('button', { name: 'Create invite' }).click();
    const code = await adminPage.locator('.secret code').textContent();
    expect(code?.length).toBeGreaterThan(16);
    await adminPage
      .getByRole('cell', { name: `${code?.slice(0, 4)}`, exact: false })
      .first()
      .waitFor();
    await adminPage.getByText('open', { exact: true }).waitFor();
    await screenshot(adminPage, '23-invites');
    await adminPage.getByRole('tab', { name: 'Users' }).click();
  });

  it('deleting a user asks for confirmation and removes the row', async () => {
    const row = userRow('dana@example.com');
    await row.getByRole('button', { name: 'Delete Dana' }).click();
    const dialog = adminPage.getByRole('dialog', { name: 'Delete user' });
    expect(await dialog.textContent()).toContain('remove their sessions and API keys');
    await screenshot(adminPage, '26-delete-confirm');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
    const users = await admin.call<{ users: { email: string }[] }>('GET', '/api/auth/admin/users');
    expect(users.users.map((u) => u.email)).toEqual(['root@example.com']);
  });

  it('token login with a legacy key signs in as the shared admin; logout returns to sign-in', async () => {
    const { context, page } = await newPage(browser, server);
    // A deep link survives the detour through sign-in.
    await page.goto('/app/usage?tab=sources&period=week');
    await page.getByRole('tab', { name: 'Use a key' }).click();
    await page.getByLabel('API key').fill(LEGACY_KEY);
    await page.getByRole('button', { name: 'Sign in with key' }).click();
    await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
    expect(await page.locator('.user-chip').textContent()).toContain('API Key User');
    expect(new URL(page.url()).search).toBe('?tab=sources&period=week');
    await screenshot(page, '24-legacy-token-login');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
    await context.close();
  });
});

describe('invite-only registration and the non-admin view', { timeout: 60_000 }, () => {
  let server: Server;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startServer({ KEYTALLY_REGISTRATION_MODE: 'invite' }),
      launchBrowser(),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('asks for an invite code, rejects a wrong one, and a valid one signs the user in', async () => {
    const admin = await ApiClient.register(server.baseUrl, 'root@example.com', 'Root');
    const invite = await admin.call<{ code: string }>('POST', '/api/auth/admin/invites', {
      expiresInHours: 24,
    });
    const { page } = await newPage(browser, server);
    await page.goto('/');
    await page.getByRole('tab', { name: 'Register' }).click();
    await page.getByLabel('Name').fill('Eve');
    await page.getByLabel('Email').fill('eve@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Invite code').fill('not-a-real-code');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('Invite code').fill(invite.code);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();

    // A regular user: own usage only, no User column, one Web UI row for their own chats.
    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    await page.getByLabel('Message').fill('hello as a regular user');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('chat-usage').waitFor();
    await page.goto('/app/usage?tab=sources');
    await page.locator('[data-testid="source-row"][data-row-id="web"]').waitFor();
    expect(await page.getByRole('columnheader', { name: 'User' }).count()).toBe(0);
    expect(await page.getByRole('tab', { name: 'Users' }).count()).toBe(0);
    await page.goto('/app/users');
    await expect.poll(async () => new URL(page.url()).pathname, POLL).toBe('/app/usage');
    await screenshot(page, '25-regular-user-sources');
  });
});
