import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, launchBrowser, newPage, type Server, screenshot, startServer } from './helpers.ts';

/**
 * Issue #13: a user creates a key with limits in the create-key form, hits them, and sees the key's
 * limits panel (used / limit), its soft-threshold badge and its rejected count update.
 */
describe('key limits in the dashboard', { timeout: 90_000 }, () => {
  let server: Server;
  let browser: Browser;
  let user: ApiClient;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    user = await ApiClient.register(server.baseUrl, 'lee@example.com', 'Lee');
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const chat = (key: string) =>
    fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({
        model: 'demo',
        messages: [{ role: 'user', content: 'hello' }],
        max_tokens: 100,
      }),
    });

  it('creates a key with limits, hits them, and shows the panel, badge and rejections', async () => {
    const { context, page } = await newPage(browser, server);
    await context.addCookies([
      { name: 'session', value: user.cookie.slice('session='.length), url: server.baseUrl },
    ]);
    await page.goto('/app/account');
    await page.getByLabel('Name').fill('limited-app');
    await page.getByText('Limits (optional)').click();
    await page.getByLabel('Requests per minute').fill('3');
    await page.getByLabel('Token budget').fill('360');
    await page.getByLabel('Budget window').selectOption('1d');
    await page.getByLabel('Warn at (% of budget)').fill('50');
    await page.getByRole('button', { name: 'Create' }).click();
    const key = (await page.getByTestId('new-key').textContent()) ?? '';
    expect(key).toMatch(/^kt-[0-9a-f]{64}$/);

    const panel = page.getByTestId('key-limits-panel').filter({ hasText: 'limited-app' });
    await expect.poll(() => panel.getByTestId('limit-rpm').getByTestId('used').textContent()).toBe('0');
    expect(await panel.getByTestId('soft-badge').count()).toBe(0);

    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await chat(key)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);

    // The panel polls every 5 s; a reload shows the new state at once.
    await page.reload();
    await expect
      .poll(() => panel.getByTestId('limit-rpm').getByTestId('used').textContent(), { timeout: 15_000 })
      .toBe('3');
    await expect
      .poll(() => panel.getByTestId('rejected').textContent(), { timeout: 15_000 })
      .toBe('1 rejected (24 h)');
    const used = Number(await panel.getByTestId('limit-token_budget').getByTestId('used').textContent());
    expect(used).toBeGreaterThanOrEqual(180);
    expect(await panel.getByTestId('soft-badge').textContent()).toBe('over 50%');
    await screenshot(page, '40-key-limits-panel');
    await context.close();
  });

  it('an admin adds a quota rule in the Users page; it blocks that model for the user and shows its usage', async () => {
    // Lee (registered first) is the admin; Max is a user with a key.
    const max = await ApiClient.register(server.baseUrl, 'max@example.com', 'Max');
    const key = await max.createKey('max-key');
    const { context, page } = await newPage(browser, server);
    await context.addCookies([
      { name: 'session', value: user.cookie.slice('session='.length), url: server.baseUrl },
    ]);
    await page.goto('/app/users');
    await page.getByRole('button', { name: 'Quotas of Max' }).click();
    const dialog = page.getByRole('dialog', { name: /Quotas of Max/ });
    await dialog.getByText('No quota rules — unlimited access').waitFor();
    await dialog.getByRole('button', { name: 'Add rule' }).click();
    await dialog.getByLabel('Model', { exact: true }).selectOption('demo');
    await dialog.getByLabel('Window', { exact: true }).selectOption('1d');
    await dialog.getByLabel('Max requests', { exact: true }).fill('2');
    await dialog.getByRole('button', { name: 'Save quotas' }).click();
    await dialog.waitFor({ state: 'hidden' });

    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await chat(key.key)).status);
    expect(statuses).toEqual([200, 200, 429]);
    const quota = await max.call<{
      quotas: { model: string; current_requests: number; max_requests: number }[];
    }>('GET', '/api/auth/quota');
    expect(quota.quotas).toEqual([
      expect.objectContaining({ model: 'demo', current_requests: 2, max_requests: 2 }),
    ]);

    await page.getByRole('button', { name: 'Quotas of Max' }).click();
    await expect
      .poll(() => dialog.getByTestId('quota-rule').textContent(), { timeout: 15_000 })
      .toContain('2 / 2');
    await screenshot(page, '41-admin-quota-rules');
    await context.close();
  });
});
