import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SourcesResponse } from '../src/shared/usage.ts';
import { formatTokens } from '../src/web/format.ts';
import {
  chatWith,
  hasHorizontalScroll,
  launchBrowser,
  newPage,
  PASSWORD,
  type Server,
  screenshot,
  startServer,
} from './helpers.ts';

/**
 * The main user journey on one server: first run, an API key used from outside, chat in the UI,
 * revocation, and every page on a phone-sized screen.
 */
describe('dashboard: first run, keys, chat, revocation', { timeout: 60_000 }, () => {
  let server: Server;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let key = '';
  let keyId = '';
  let adminId = '';

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    ({ context, page } = await newPage(browser, server));
  });
  afterEach(async (test) => {
    if (test.task.result?.state === 'fail' && !page.isClosed())
      await screenshot(page, `failed-${test.task.name.slice(0, 40)}`);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const adminSources = async (): Promise<SourcesResponse> =>
    (await page.request.get('/api/auth/admin/usage/sources?period=month')).json() as Promise<SourcesResponse>;

  it('first run: the visitor creates the admin account and lands on the dashboard', async () => {
    await page.goto('/');
    await page.getByRole('heading', { name: 'Welcome to keytally' }).waitFor();
    await page.getByLabel('Name').fill('Ada Admin');
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create admin account' }).click();
    await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/app/usage');
    await page.getByRole('link', { name: 'Users', exact: true }).waitFor();
    const me = (await (await page.request.get('/api/auth/me')).json()) as { id: string; role: string };
    expect(me.role).toBe('admin');
    adminId = me.id;
    await screenshot(page, '01-first-run-dashboard');
  });

  it('creates a key, copies it, and the key’s traffic shows in the Sources tab with its tokens', async () => {
    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    await page.getByLabel('Name').fill('ci-runner');
    await page.getByRole('button', { name: 'Create' }).click();
    const shown = page.getByTestId('new-key');
    await shown.waitFor();
    key = (await shown.textContent()) ?? '';
    expect(key).toMatch(/^kt-[0-9a-f]{64}$/);
    await page.getByRole('button', { name: 'Copy' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
    const setup = (await page.getByTestId('client-setup').textContent()) ?? '';
    expect(setup).toContain(`${server.baseUrl}/v1`);
    expect(setup).toContain('Ollama clients');
    await page.getByRole('row', { name: /ci-runner/ }).waitFor();
    await screenshot(page, '02-key-created');

    const keys = (await (await page.request.get('/api/auth/api-keys')).json()) as {
      keys: { id: string; name: string }[];
    };
    keyId = keys.keys.find((k) => k.name === 'ci-runner')?.id ?? '';
    expect(keyId).not.toBe('');

    const first = await chatWith(server.baseUrl, { authorization: `Bearer ${key}` }, 'hello from a script');
    const second = await chatWith(server.baseUrl, { authorization: `Bearer ${key}` }, 'and again');
    // The same key from an Ollama client, on the demo model's native API.
    const ollama = await fetch(`${server.baseUrl}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', stream: false, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const ollamaReply = (await ollama.json()) as { prompt_eval_count: number; eval_count: number };
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(ollama.status).toBe(200);

    await page.goto('/app/usage?tab=sources');
    const row = page.locator(`[data-testid="source-row"][data-row-id="${keyId}"]`);
    await row.getByRole('cell', { name: '3', exact: true }).waitFor();
    const expected =
      first.totalTokens + second.totalTokens + ollamaReply.prompt_eval_count + ollamaReply.eval_count;
    const sources = await adminSources();
    expect(sources.totals.by_key.find((k) => k.api_key_id === keyId)?.tokens).toBe(expected);
    expect(await row.textContent()).toContain(formatTokens(expected));
    expect(await row.textContent()).toContain(sources.totals.by_key[0]?.key_prefix ?? 'missing prefix');
    expect(await row.textContent()).not.toContain('revoked');
    await screenshot(page, '03-sources-key-row');
  });

  it('chatting in the UI streams an answer, shows its tokens, and grows the Web UI row', async () => {
    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    // The model list arrives after the page renders: wait for it rather than read an empty select.
    await expect.poll(() => page.getByLabel('Model').inputValue(), { timeout: 10_000 }).toBe('demo');
    await page.getByLabel('Message').fill('Tell me about keytally');
    await page.getByRole('button', { name: 'Send' }).click();
    const usage = page.getByTestId('chat-usage');
    await usage.waitFor();
    expect(await usage.textContent()).toMatch(/\d+ tokens/);
    expect((await page.getByTestId('assistant-message').textContent())?.length).toBeGreaterThan(20);
    await screenshot(page, '04-chat');

    const webRow = page.locator(`[data-testid="source-row"][data-row-id="web:${adminId}"]`);
    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    await webRow.getByRole('cell', { name: '1', exact: true }).waitFor();
    expect(await webRow.textContent()).toContain('Web UI');

    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    await page.getByLabel('Message').fill('One more, please');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('chat-usage').nth(1).waitFor();
    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    // The same page, no reload: the Web UI row now counts both chats.
    await webRow.getByRole('cell', { name: '2', exact: true }).waitFor();
  });

  it('revoking the key marks its row "revoked" and the key gets 401', async () => {
    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    await page.getByRole('button', { name: 'Revoke ci-runner' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke API key' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await page
      .getByRole('row', { name: /ci-runner/ })
      .getByText('revoked')
      .waitFor();
    const after = await chatWith(server.baseUrl, { authorization: `Bearer ${key}` }, 'still there?');
    expect(after.status).toBe(401);

    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    const row = page.locator(`[data-testid="source-row"][data-row-id="${keyId}"]`);
    await row.getByText('revoked').waitFor();
    expect((await adminSources()).totals.by_key.find((k) => k.api_key_id === keyId)?.revoked).toBe(true);
    await screenshot(page, '05-sources-revoked');
  });

  it('the theme toggle switches to dark and back, and the choice survives a reload', async () => {
    await page.goto('/app/usage');
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme ?? 'system');
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    expect(await theme()).toBe('dark');
    await page.reload();
    await page.getByRole('button', { name: 'Switch to light theme' }).waitFor();
    expect(await theme()).toBe('dark');
    await screenshot(page, '06-dark-usage');
    await page.getByRole('button', { name: 'Switch to light theme' }).click();
    expect(await theme()).toBe('light');
  });

  it('every page fits a 390 px wide screen without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const pages = [
      '/app/usage',
      '/app/usage?tab=users',
      '/app/usage?tab=sources',
      '/app/usage?period=day',
      '/app/chat',
      '/app/account',
      '/app/account?tab=profile',
      '/app/account?tab=security',
      '/app/users',
      '/app/users?tab=invites',
    ];
    for (const url of pages) {
      await page.goto(url);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      expect({ url, scroll: await hasHorizontalScroll(page) }).toEqual({ url, scroll: false });
      await screenshot(page, `mobile-${url.replace(/[/?=&]+/g, '-').replace(/^-/, '')}`);
    }
    const { context: anonymous, page: login } = await newPage(browser, server, { width: 390, height: 844 });
    await login.goto('/');
    await login.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
    expect(await hasHorizontalScroll(login)).toBe(false);
    await screenshot(login, 'mobile-login');
    await anonymous.close();
    await context.close();
  });
});
