import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiClient,
  chatWith,
  launchBrowser,
  newPage,
  type Server,
  screenshot,
  startServer,
} from './helpers.ts';

/**
 * Issue 14 in the browser: a user creates a scoped, model-limited key in the create-key form,
 * rotates it (the new secret is shown once; the old one keeps working during the grace), then
 * disables and re-enables it, each action confirmed in a dialog. Every effect is checked through
 * the real API with the secrets the page showed.
 */
describe('API key access in the dashboard', { timeout: 90_000 }, () => {
  let server: Server;
  let browser: Browser;
  let user: ApiClient;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    user = await ApiClient.register(server.baseUrl, 'rhea@example.com', 'Rhea');
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const chatModel = async (key: string, model: string) => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: response.status, body: (await response.json()) as { error?: { message: string } } };
  };

  it('create a scoped, model-limited key; rotate it; disable and re-enable it', async () => {
    const { context, page } = await newPage(browser, server);
    await context.addCookies([
      { name: 'session', value: user.cookie.slice('session='.length), url: server.baseUrl },
    ]);
    await page.goto('/app/account');

    // create: inference only, models demo*
    await page.getByLabel('Name').fill('scoped-key');
    await page.getByLabel('Usage (read its own usage)').uncheck();
    await page.getByLabel('Allowed models').fill('demo*');
    await page.getByRole('button', { name: 'Create' }).click();
    const first = (await page.getByTestId('new-key').textContent()) ?? '';
    expect(first).toMatch(/^kt-[0-9a-f]{64}$/);
    const row = page.getByRole('row', { name: /scoped-key/ });
    await row.waitFor();
    expect(await row.getByTestId('key-access').textContent()).toBe('inference · restricted');
    await screenshot(page, '40-access-created-scoped-key');

    expect((await chatModel(first, 'demo')).status).toBe(200);
    const refused = await chatModel(first, 'gpt-4o');
    expect(refused.status).toBe(403);
    expect(refused.body.error?.message).toBe('access denied to model: gpt-4o');
    const usage = await fetch(`${server.baseUrl}/v1/usage`, {
      headers: { authorization: `Bearer ${first}` },
    });
    expect(usage.status).toBe(403);

    // rotate, keeping the old secret for an hour
    await page.getByRole('button', { name: 'Dismiss' }).click();
    await row.getByRole('button', { name: 'Rotate scoped-key' }).click();
    const rotateDialog = page.getByRole('dialog', { name: 'Rotate API key' });
    await rotateDialog.getByLabel('Old secret keeps working').selectOption('1h');
    await rotateDialog.getByRole('button', { name: 'Rotate' }).click();
    const secret = page.getByTestId('new-key');
    await expect.poll(() => secret.textContent()).not.toBe(first);
    const second = (await secret.textContent()) ?? '';
    expect(second).toMatch(/^kt-[0-9a-f]{64}$/);
    await page.getByText(/The old secret keeps working until/).waitFor();
    await row.getByText('rotating').waitFor();
    await row.getByRole('button', { name: 'Details of scoped-key' }).click();
    await page.getByTestId('rotating-note').waitFor();
    expect(await page.getByTestId('rotating-note').textContent()).toMatch(
      /^rotating, old secret valid until /,
    );
    await screenshot(page, '41-access-rotated-key');
    expect((await chatWith(server.baseUrl, { authorization: `Bearer ${first}` }, 'old')).status).toBe(200);
    expect((await chatWith(server.baseUrl, { authorization: `Bearer ${second}` }, 'new')).status).toBe(200);

    // disable, confirmed
    await row.getByRole('button', { name: 'Disable scoped-key' }).click();
    const disableDialog = page.getByRole('dialog', { name: 'Disable API key' });
    await disableDialog.getByRole('button', { name: 'Disable' }).click();
    await row.getByText('disabled', { exact: true }).waitFor();
    const disabled = await chatModel(second, 'demo');
    expect(disabled.status).toBe(401);
    expect(disabled.body.error?.message).toMatch(/API key is disabled/);
    await screenshot(page, '42-access-disabled-key');

    // enable again, confirmed
    await row.getByRole('button', { name: 'Enable scoped-key' }).click();
    await page
      .getByRole('dialog', { name: 'Enable API key' })
      .getByRole('button', { name: 'Enable' })
      .click();
    await row.getByRole('button', { name: 'Disable scoped-key' }).waitFor();
    expect((await chatModel(second, 'demo')).status).toBe(200);
    await context.close();
  });
  it("the admin's permissions modal turns a feature off and restricts a user's models", async () => {
    const sam = await ApiClient.register(server.baseUrl, 'sam@example.com', 'Sam');
    const { context, page } = await newPage(browser, server);
    await context.addCookies([
      { name: 'session', value: user.cookie.slice('session='.length), url: server.baseUrl },
    ]);
    await page.goto('/app/users');
    const row = page.getByRole('row', { name: /sam@example\.com/ });
    expect(await row.textContent()).toContain('22/22 API, 0/5 Agent, 0/2 Features');
    await row.getByRole('button', { name: 'Permissions of Sam' }).click();
    const dialog = page.getByRole('dialog', { name: 'Permissions for “Sam”' });
    await dialog.getByLabel('Chat Completions').uncheck();
    await screenshot(page, '43-access-permissions-modal');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Permissions of Sam saved').waitFor();
    await expect.poll(() => row.textContent()).toContain('21/22 API');
    const chat = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: sam.cookie },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(chat.status).toBe(403);
    expect(((await chat.json()) as { error: { message: string } }).error.message).toBe(
      'feature not enabled for your account: chat',
    );

    await row.getByRole('button', { name: 'Permissions of Sam' }).click();
    await dialog.getByLabel('Chat Completions').check();
    await dialog.getByLabel('Restrict to specific models').check();
    await dialog.getByLabel('demo', { exact: true }).waitFor();
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => row.textContent()).toContain('| Models restricted');
    const models = await fetch(`${server.baseUrl}/v1/models`, { headers: { cookie: sam.cookie } });
    expect(((await models.json()) as { data: unknown[] }).data).toEqual([]);
    expect((await chatWith(server.baseUrl, { cookie: sam.cookie }, 'hi')).status).toBe(403);
    await context.close();
  });
});
