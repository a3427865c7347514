import type { Browser, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, launchBrowser, newPage, type Server, screenshot, startServer } from './helpers.ts';

/** An unknown dashboard address, and how the browser receives the dashboard's files. */
describe('dashboard: unknown pages and static files', { timeout: 60_000 }, () => {
  let server: Server;
  let browser: Browser;
  let admin: ApiClient;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    admin = await ApiClient.register(server.baseUrl, 'nora@example.com', 'Nora Admin');
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('an unknown /app/ path shows a not-found page, not Usage, and links back to Usage', async () => {
    const { context, page } = await newPage(browser, server);
    try {
      const [name = '', value = ''] = admin.cookie.split('=');
      await context.addCookies([{ name, value, url: server.baseUrl }]);
      await page.goto('/app/usgae?period=week');
      await page.getByRole('heading', { name: 'Page not found', level: 1 }).waitFor();
      expect(await page.getByText('/app/usgae').isVisible()).toBe(true);
      expect(await page.getByRole('heading', { name: 'Usage', level: 1 }).count()).toBe(0);
      expect(new URL(page.url()).pathname).toBe('/app/usgae');
      expect(await page.title()).toBe('Page not found · keytally');
      await screenshot(page, 'not-found');

      await page.getByRole('main').getByRole('link', { name: 'Usage' }).click();
      await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
      expect(new URL(page.url()).pathname).toBe('/app/usage');
    } finally {
      await context.close();
    }
  });

  it('the browser gets the scripts brotli-compressed and cacheable for a year, the page revalidated', async () => {
    const { context, page } = await newPage(browser, server);
    try {
      const responses: Response[] = [];
      page.on('response', (response) => responses.push(response));
      await page.goto('/');
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      const document = responses.find((response) => new URL(response.url()).pathname === '/');
      const script = responses.find((response) => /\/assets\/.+\.js$/.test(response.url()));
      expect(document?.headers()['cache-control']).toBe('no-cache');
      const scriptHeaders = (await script?.allHeaders()) ?? {};
      expect(scriptHeaders['content-encoding']).toBe('br');
      expect(scriptHeaders['cache-control']).toBe('public, max-age=31536000, immutable');
    } finally {
      await context.close();
    }
  });
});
