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
  waitFor,
} from './helpers.ts';

interface SourcesAnswer {
  totals: { by_key: { api_key_id: string; tokens: number }[] };
}

/**
 * Found in QA: the key list's "Tokens (30 d)" column showed 0 for keys that had traffic. The
 * table caches each row's values until the row data changes, and the tokens came from a closure
 * over the usage answer, which arrives after the key list.
 */
describe('the API keys tab', { timeout: 60_000 }, () => {
  let server: Server;
  let browser: Browser;
  let user: ApiClient;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    user = await ApiClient.register(server.baseUrl, 'kim@example.com', 'Kim');
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it("shows each key's tokens of the last 30 days once usage arrives", async () => {
    const used = await user.createKey('busy-key');
    await user.createKey('idle-key');
    const { status, totalTokens } = await chatWith(
      server.baseUrl,
      { authorization: `Bearer ${used.key}` },
      'count me',
    );
    expect(status).toBe(200);
    const answer = await waitFor(
      () => user.call<SourcesAnswer>('GET', '/api/auth/usage/sources?period=month'),
      (a) => a.totals.by_key.some((k) => k.api_key_id === used.id),
    );
    const tokens = answer.totals.by_key.find((k) => k.api_key_id === used.id)?.tokens ?? 0;
    expect(tokens).toBe(totalTokens);

    const { context, page } = await newPage(browser, server);
    await context.addCookies([
      { name: 'session', value: user.cookie.slice('session='.length), url: server.baseUrl },
    ]);
    // Hold the usage answer until the key list is on screen: the order that showed the bug.
    let release: () => void = () => {};
    const listShown = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route('**/api/auth/usage/sources**', async (route) => {
      await listShown;
      await route.continue();
    });
    await page.goto('/app/account');
    const busy = page.getByRole('row', { name: /busy-key/ });
    const idle = page.getByRole('row', { name: /idle-key/ });
    await busy.waitFor();
    expect(await busy.locator('td, th').nth(5).textContent()).toBe('…');
    release();
    // The column is the 6th cell: Name, Prefix, Created, Last used, Expires, Tokens (30 d).
    await expect
      .poll(() => busy.locator('td, th').nth(5).textContent(), { timeout: 10_000 })
      .toBe(String(tokens));
    expect(await idle.locator('td, th').nth(5).textContent()).toBe('0');
    await screenshot(page, '32-account-key-tokens');
    await context.close();
  });
});
