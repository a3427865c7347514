import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { UsageResponse } from '../src/shared/usage.ts';
import { formatUsd } from '../src/web/format.ts';
import {
  ApiClient,
  chatWith,
  launchBrowser,
  newPage,
  PASSWORD,
  type Server,
  screenshot,
  startServer,
  waitFor,
} from './helpers.ts';

/**
 * Cost in the dashboard: unpriced demo traffic shows a "no price" marker that leads to the Prices
 * page; a price set there prices new traffic, which the Usage page shows in cost mode; the
 * tokens/cost switch changes every figure on the page.
 */
describe('cost: prices page and the tokens/cost switch', { timeout: 90_000 }, () => {
  let server: Server;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let admin: ApiClient;
  let key = '';

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    admin = await ApiClient.register(server.baseUrl, 'ada@example.com', 'Ada Admin');
    key = (await admin.createKey('cost-e2e')).key;
    ({ context, page } = await newPage(browser, server));
    await page.goto('/login');
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
  });
  afterEach(async (test) => {
    if (test.task.result?.state === 'fail' && !page.isClosed())
      await screenshot(page, `failed-cost-${test.task.name.slice(0, 40)}`);
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
  });

  const adminUsage = async (): Promise<UsageResponse> =>
    (await page.request.get('/api/auth/admin/usage?period=month')).json() as Promise<UsageResponse>;

  it('unpriced traffic is marked "no price" and the marker leads to the Prices page', async () => {
    expect((await chatWith(server.baseUrl, { authorization: `Bearer ${key}` }, 'hello there')).status).toBe(
      200,
    );
    await waitFor(adminUsage, (usage) => usage.totals.request_count === 1);
    await page.goto('/app/usage');
    const marker = page.getByTestId('no-price').first();
    await marker.waitFor();
    await marker.click();
    await page.getByRole('heading', { name: 'Prices', level: 1 }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/app/prices');
    expect(await page.getByLabel('Model (name or glob, e.g. llama3*)').inputValue()).toBe('demo');
    await page.getByTestId('unpriced-models').getByRole('button', { name: 'Set a price for demo' }).waitFor();
  });

  it('a price created on the Prices page prices new traffic, shown on the Usage page', async () => {
    await page.getByLabel('Input', { exact: true }).fill('2');
    await page.getByLabel('Output', { exact: true }).fill('4');
    await page.getByRole('button', { name: 'Add price' }).click();
    await page.getByTestId('price-row').filter({ hasText: 'demo' }).waitFor();
    // Priced now: no longer offered as a model without a price.
    await page.getByTestId('unpriced-models').waitFor({ state: 'detached' });
    await screenshot(page, 'cost-01-prices');

    expect(
      (await chatWith(server.baseUrl, { authorization: `Bearer ${key}` }, 'price me please')).status,
    ).toBe(200);
    const usage = await waitFor(adminUsage, (value) => value.totals.request_count === 2);
    expect(usage.totals.unpriced_requests).toBe(1);
    expect(usage.totals.cost).toBeGreaterThan(0);

    await page.goto('/app/usage?measure=cost');
    await page.getByRole('heading', { name: 'Cost over time' }).waitFor();
    await waitFor(
      () => page.getByTestId('stat-total').locator('.value').textContent(),
      (text) => text === formatUsd(usage.totals.cost),
    );
    // All of it is in one day's bucket: the chart's table view shows the total in that bucket.
    await page.getByRole('button', { name: 'Table' }).first().click();
    await page
      .getByTestId('chart-table')
      .getByRole('cell', { name: formatUsd(usage.totals.cost) })
      .first()
      .waitFor();
    await page.getByRole('button', { name: 'Chart' }).first().click();
    const row = page.getByRole('row').filter({ hasText: 'demo' });
    await row.getByText(formatUsd(usage.totals.cost)).waitFor();
    await screenshot(page, 'cost-02-usage-cost');
  });

  it('the tokens/cost switch changes every figure on the page', async () => {
    await page.goto('/app/usage');
    await page.getByRole('heading', { name: 'Tokens over time' }).waitFor();
    const figures = () =>
      page.evaluate(() => ({
        cards: [...document.querySelectorAll('[data-testid^="stat-"]')].map((card) => card.textContent ?? ''),
        chart:
          document.querySelector('[data-testid="time-chart"] .chart-host')?.getAttribute('aria-label') ?? '',
        heading: document.querySelector('#models-title')?.textContent ?? '',
      }));
    const tokens = await figures();
    await page.getByRole('group', { name: 'Measure' }).getByRole('button', { name: 'Cost' }).click();
    await page.getByRole('heading', { name: 'Cost over time' }).waitFor();
    const cost = await figures();
    expect(cost.cards).toHaveLength(tokens.cards.length);
    cost.cards.forEach((card, index) => {
      // Requests are requests in both measures; every other card changes.
      if (card.startsWith('Requests') && tokens.cards[index]?.startsWith('Requests')) return;
      expect(card).not.toBe(tokens.cards[index]);
    });
    expect(cost.chart).toMatch(/^Cost over time/);
    expect(tokens.chart).toMatch(/^Tokens over time/);
    expect(cost.heading).toBe('Cost by model');
    expect(new URL(page.url()).searchParams.get('measure')).toBe('cost');
    await page.getByRole('group', { name: 'Measure' }).getByRole('button', { name: 'Tokens' }).click();
    await page.getByRole('heading', { name: 'Tokens over time' }).waitFor();
    expect(await figures()).toEqual(tokens);
  });
});
