import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, launchBrowser, newPage, type Server, screenshot, startServer } from './helpers.ts';

/** WCAG contrast ratio of every badge on the page (text colour against the badge background). */
async function badgeContrasts(page: Page): Promise<{ text: string; ratio: number }[]> {
  return page.$$eval('.badge', (badges) => {
    const channels = (css: string) => (css.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
    const luminance = (css: string) => {
      const [r = 0, g = 0, b = 0] = channels(css).map((v) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    return badges.map((badge) => {
      const style = getComputedStyle(badge);
      const [hi, lo] = [luminance(style.color), luminance(style.backgroundColor)].sort((a, b) => b - a);
      return { text: badge.textContent ?? '', ratio: ((hi ?? 0) + 0.05) / ((lo ?? 0) + 0.05) };
    });
  });
}

/**
 * Found in QA: with the system in dark mode (no theme picked in the app) the status badges kept
 * their light-theme text colours (dark green on dark green), the admin and danger badges were
 * under 4.5:1 in both themes, and dates in the Users table broke over two lines.
 */
describe('the Users page is readable in every theme', { timeout: 60_000 }, () => {
  let server: Server;
  let browser: Browser;
  let admin: ApiClient;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    admin = await ApiClient.register(server.baseUrl, 'root@example.com', 'Root');
    await ApiClient.register(server.baseUrl, 'dana@example.com', 'Dana');
    const eve = await (await ApiClient.register(server.baseUrl, 'eve@example.com', 'Eve')).me();
    await admin.call('PUT', `/api/auth/admin/users/${eve.id}/status`, { status: 'disabled' });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  for (const [label, colorScheme, theme] of [
    ['light system theme', 'light', null],
    ['dark system theme', 'dark', null],
    ['dark theme picked in the app', 'light', 'dark'],
  ] as const) {
    it(`${label}: badges have at least 4.5:1 contrast and dates stay on one line`, async () => {
      const context = await browser.newContext({
        baseURL: server.baseUrl,
        viewport: { width: 1280, height: 860 },
        colorScheme,
      });
      context.setDefaultTimeout(15_000);
      await context.addCookies([
        { name: 'session', value: admin.cookie.slice('session='.length), url: server.baseUrl },
      ]);
      if (theme) {
        await context.addInitScript((t) => window.localStorage.setItem('keytally-theme', t), theme);
      }
      const page = await context.newPage();
      await page.goto('/app/users');
      await page.locator('[data-testid="admin-user-row"]', { hasText: 'dana@example.com' }).waitFor();
      expect(await page.evaluate(() => document.documentElement.dataset.theme ?? null)).toBe(theme);
      await screenshot(page, `30-users-${colorScheme}${theme ? `-${theme}` : ''}`);

      const contrasts = await badgeContrasts(page);
      expect(contrasts.map((c) => c.text)).toEqual(expect.arrayContaining(['admin', 'active', 'disabled']));
      expect(contrasts.filter((c) => c.ratio < 4.5)).toEqual([]);

      const dateLines = await page.$$eval('[data-testid="admin-user-row"] .nowrap', (cells) =>
        cells.map((cell) => cell.getClientRects().length),
      );
      expect(dateLines.length).toBeGreaterThan(0);
      expect(dateLines.every((lines) => lines === 1)).toBe(true);
      await context.close();
    });
  }
});

describe('page header actions', { timeout: 60_000 }, () => {
  let server: Server;
  let browser: Browser;
  let admin: ApiClient;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    admin = await ApiClient.register(server.baseUrl, 'root@example.com', 'Root');
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  // Found in QA: the Chat page's model picker and Clear button floated mid-page at 1280 px
  // because the actions block grew like the title block.
  it('sit at the right edge of the header on a wide screen', async () => {
    const { context, page } = await newPage(browser, server);
    await context.addCookies([
      { name: 'session', value: admin.cookie.slice('session='.length), url: server.baseUrl },
    ]);
    await page.goto('/app/chat');
    const clear = page.getByRole('button', { name: 'Clear' });
    await clear.waitFor();
    await screenshot(page, '31-chat-header');
    const head = await page.locator('.page-head').boundingBox();
    const button = await clear.boundingBox();
    expect(head && button).toBeTruthy();
    if (!head || !button) return;
    expect(Math.abs(head.x + head.width - (button.x + button.width))).toBeLessThanOrEqual(1);
    await context.close();
  });
});
