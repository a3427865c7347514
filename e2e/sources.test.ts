import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/server/db/connection.ts';
import { insertUsageBatch, type UsageRow } from '../src/server/usage/ingest.repository.ts';
import type { SourcesResponse, UsageResponse } from '../src/shared/usage.ts';
import { formatCount, formatTokens } from '../src/web/format.ts';
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
 * The admin's Sources tab on one server with several users: attribution, per-user Web UI rows,
 * search, sort, drill-in, top-7 + Other, user filter, periods and ranges, truncation.
 */
const POLL = { timeout: 10_000, interval: 100 };

describe('usage sources as an admin with several users', { timeout: 60_000 }, () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  let admin: ApiClient;
  let bob: ApiClient;
  let carol: ApiClient;
  const ids = { admin: '', bob: '', carol: '', bobKey: '' };

  const rows = () => page.locator('[data-testid="source-row"]');
  const rowIds = async () =>
    rows().evaluateAll((els) => els.map((el) => el.getAttribute('data-row-id') ?? ''));
  const sourcesApi = async (query: string): Promise<SourcesResponse> =>
    (await page.request.get(`/api/auth/admin/usage/sources?${query}`)).json() as Promise<SourcesResponse>;
  const usageApi = async (query: string): Promise<UsageResponse> =>
    (await page.request.get(`/api/auth/admin/usage?${query}`)).json() as Promise<UsageResponse>;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServer(), launchBrowser()]);
    admin = await ApiClient.register(server.baseUrl, 'ada@example.com', 'Ada');
    bob = await ApiClient.register(server.baseUrl, 'bob@example.com', 'Bob');
    carol = await ApiClient.register(server.baseUrl, 'carol@example.com', 'Carol');
    ids.admin = (await admin.me()).id;
    ids.bob = (await bob.me()).id;
    ids.carol = (await carol.me()).id;

    const bobKey = await bob.createKey('bob-laptop');
    ids.bobKey = bobKey.id;
    const adminKey = await admin.createKey('ada-ci');
    for (const [headers, text] of [
      [{ authorization: `Bearer ${bobKey.key}` }, 'bob calls from his laptop'],
      [{ authorization: `Bearer ${bobKey.key}` }, 'and again'],
      [
        { authorization: `Bearer ${adminKey.key}` },
        'the admin’s CI job with a much longer prompt than the others here',
      ],
    ] as const) {
      expect((await chatWith(server.baseUrl, headers, text)).status).toBe(200);
    }
    await admin.chat('hello from the admin in the web UI');
    await bob.chat('hi from bob in the web UI');
    // Carol: nine keys with traffic, each a different amount.
    for (let i = 1; i <= 9; i++) {
      const key = await carol.createKey(`carol-${i}`);
      expect((await chatWith(server.baseUrl, { 'x-api-key': key.key }, 'word '.repeat(i * 5))).status).toBe(
        200,
      );
    }
    const { context } = await newPage(browser, server);
    await context.addCookies([
      { name: 'session', value: admin.cookie.slice('session='.length), url: server.baseUrl },
    ]);
    page = await context.newPage();
    // Usage reaches the database within one 100 ms flush.
    const deadline = Date.now() + 10_000;
    while ((await sourcesApi('period=month')).totals.grand_total.requests < 14 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
  afterEach(async (test) => {
    if (test.task.result?.state === 'fail' && page && !page.isClosed())
      await screenshot(page, `failed-${test.task.name.slice(0, 40)}`);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows the other user’s key with its user and NOT revoked, and per-user Web UI rows', async () => {
    await page.goto('/app/usage?tab=sources');
    const bobRow = page.locator(`[data-testid="source-row"][data-row-id="${ids.bobKey}"]`);
    await bobRow.waitFor();
    expect(await bobRow.textContent()).toContain('Bob');
    expect(await bobRow.textContent()).not.toContain('revoked');
    await page.locator(`[data-row-id="web:${ids.admin}"]`).getByRole('cell', { name: 'Ada' }).waitFor();
    await page.locator(`[data-row-id="web:${ids.bob}"]`).getByRole('cell', { name: 'Bob' }).waitFor();
    expect(await page.locator(`[data-row-id="web:${ids.bob}"]`).textContent()).toContain('Web UI');
    const api = await sourcesApi('period=month');
    expect(api.totals.by_key.find((k) => k.api_key_id === ids.bobKey)?.revoked).toBe(false);
    expect(await rows().count()).toBe(api.totals.by_key.length + (api.totals.by_user_source?.length ?? 0));
    await screenshot(page, '10-admin-sources');
  });

  it('search narrows the table and survives a period change and a reload (in the URL)', async () => {
    await page.getByLabel('Search sources').fill('bob');
    await expect.poll(rowIds, POLL).toEqual(expect.arrayContaining([ids.bobKey, `web:${ids.bob}`]));
    expect((await rowIds()).sort()).toEqual([ids.bobKey, `web:${ids.bob}`].sort());
    expect(new URL(page.url()).searchParams.get('q')).toBe('bob');
    await page.getByRole('button', { name: 'Week' }).click();
    await page.reload();
    await rows().first().waitFor();
    expect(await page.getByLabel('Search sources').inputValue()).toBe('bob');
    expect((await rowIds()).sort()).toEqual([ids.bobKey, `web:${ids.bob}`].sort());
    // The CSV export holds exactly the rows shown.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    const csv = fs
      .readFileSync(await download.path(), 'utf8')
      .trim()
      .split(/\r?\n/);
    expect(csv[0]).toBe('kind,name,user,prefix,requests,tokens,cost_usd,unpriced_requests,last_used,revoked');
    expect(
      csv
        .slice(1)
        .map((line) => line.split(',').slice(0, 3).join(','))
        .sort(),
    ).toEqual(['apikey,bob-laptop,Bob', 'web,Web UI,Bob'].sort());
    await page.getByLabel('Search sources').fill('carol-');
    await expect.poll(async () => (await rowIds()).length, POLL).toBe(9);
    await screenshot(page, '15-search');
    await page.getByLabel('Search sources').fill('');
    await page.getByRole('button', { name: 'Month' }).click();
  });

  it('each sort order is right', async () => {
    // The dashboard's view of the answer: Web UI rows carry their last use too.
    const api = await sourcesApi('period=month&top=7');
    const facts = new Map<
      string,
      { tokens: number; requests: number; name: string; user: string; last: number }
    >();
    for (const k of api.totals.by_key)
      facts.set(k.api_key_id, {
        tokens: k.tokens,
        requests: k.requests,
        name: k.api_key_name,
        user: k.user_name,
        last: Date.parse(k.last_used),
      });
    for (const u of api.totals.by_user_source ?? [])
      facts.set(`${u.source}:${u.user_id}`, {
        tokens: u.tokens,
        requests: u.requests,
        name: u.source === 'web' ? 'Web UI' : 'Legacy',
        user: u.user_name,
        last: u.last_used ? Date.parse(u.last_used) : Number.NEGATIVE_INFINITY,
      });
    const ordered = (sort: string, compare: (a: string, b: string) => number) => async () => {
      await page.getByLabel('Sort').selectOption(sort);
      await expect
        .poll(async () => new URL(page.url()).searchParams.get('sort') ?? 'tokens', POLL)
        .toBe(sort);
      const shown = await rowIds();
      expect(shown.length).toBe(facts.size);
      for (let i = 1; i < shown.length; i++)
        expect(compare(shown[i - 1] ?? '', shown[i] ?? '')).toBeLessThanOrEqual(0);
    };
    const f = (id: string) => facts.get(id) ?? { tokens: 0, requests: 0, name: '', user: '', last: 0 };
    await ordered('requests', (a, b) => f(b).requests - f(a).requests)();
    await ordered('last_used', (a, b) => (f(b).last > f(a).last ? 1 : f(b).last < f(a).last ? -1 : 0))();
    await ordered('name', (a, b) => f(a).name.localeCompare(f(b).name))();
    await ordered('user', (a, b) => f(a).user.localeCompare(f(b).user))();
    await ordered('tokens', (a, b) => f(b).tokens - f(a).tokens)();
    // Column headers sort too, and say so to screen readers.
    await page.getByRole('button', { name: 'Requests', exact: true }).click();
    await expect.poll(async () => new URL(page.url()).searchParams.get('sort'), POLL).toBe('requests');
    expect(await page.getByRole('columnheader', { name: 'Requests' }).getAttribute('aria-sort')).toBe(
      'descending',
    );
    expect(await page.getByLabel('Sort').inputValue()).toBe('requests');
    await screenshot(page, '16-sorted-by-requests');
    await page.getByLabel('Sort').selectOption('tokens');
  });

  it('clicking a row filters the tab to it, moves its series to the baseline and shows the chip; the chip clears it', async () => {
    const host = page.locator('[data-testid="source-chart"] .chart-host');
    const stack = async () => ((await host.getAttribute('data-stack')) ?? '').split(' ');
    const dimmed = async () => ((await host.getAttribute('data-dimmed')) ?? '').split(' ').filter(Boolean);
    const bobWeb = page.locator(`[data-row-id="web:${ids.bob}"]`);
    await bobWeb.click();
    const chip = page.getByTestId('filter-chip');
    await chip.waitFor();
    expect(await chip.textContent()).toContain('Web UI · Bob');
    // Bob's Web UI series is drawn apart (kept by `keep` even outside the top 7), at the baseline,
    // and the only one not faded.
    await expect.poll(async () => (await stack())[0], POLL).toBe(`web:${ids.bob}`);
    expect((await dimmed()).length).toBe((await stack()).length - 1);
    await expect.poll(rowIds, POLL).toEqual([`web:${ids.bob}`]);
    expect(await page.locator(`[data-row-id="web:${ids.bob}"]`).getAttribute('aria-selected')).toBe('true');
    await screenshot(page, '11-drill-in');

    await chip.getByRole('button', { name: 'Clear filter' }).click();
    await chip.waitFor({ state: 'detached' });
    // Keyboard: a focused row selects with Enter, the tab list moves with the arrow keys.
    await page.locator(`[data-row-id="${ids.bobKey}"]`).focus();
    await page.keyboard.press('Enter');
    expect(await chip.textContent()).toContain('bob-laptop');
    await chip.getByRole('button', { name: 'Clear filter' }).click();
    await page.getByRole('tab', { name: 'Sources' }).focus();
    await page.keyboard.press('ArrowLeft');
    expect(await page.getByRole('tab', { name: 'Users' }).getAttribute('aria-selected')).toBe('true');
    await page.keyboard.press('ArrowRight');
    await chip.waitFor({ state: 'detached' });
    await expect.poll(dimmed, POLL).toEqual([]);

    // The ribbon's "API keys" segment selects every key series (and the keys' part of Other).
    await page.getByTestId('ribbon-apikey').click();
    expect(await chip.textContent()).toContain('API keys');
    await expect.poll(async () => (await dimmed()).length, POLL).toBeGreaterThan(0);
    const faded = await dimmed();
    const lit = (await stack()).filter((id) => !faded.includes(id));
    expect(faded.every((id) => id.startsWith('web:') || id === '__other__')).toBe(true);
    expect(lit.length).toBeGreaterThan(faded.length);
    expect((await rowIds()).some((id) => id.startsWith('web:'))).toBe(false);
    await chip.getByRole('button', { name: 'Clear filter' }).click();
  });

  it('Users tab: choosing a user filters the Sources tab; nine keys make seven series plus Other', async () => {
    await page.getByRole('tab', { name: 'Users' }).click();
    await page.locator(`[data-testid="user-usage-row"][data-user-id="${ids.carol}"]`).click();
    await page.getByTestId('user-chip').waitFor();
    await page.getByRole('tab', { name: 'Sources' }).click();
    await expect.poll(async () => (await rowIds()).length, POLL).toBe(9);
    const carolKeys = (await sourcesApi(`period=month&user_id=${ids.carol}`)).totals.by_key;
    expect((await rowIds()).sort()).toEqual(carolKeys.map((k) => k.api_key_id).sort());
    const legend = await page.getByTestId('series-legend').allTextContents();
    expect(legend).toHaveLength(8);
    expect(legend[7]).toBe('Other (2)');
    await screenshot(page, '12-user-filter-top7');
    await page.getByRole('button', { name: 'Clear user filter' }).click();
    await expect.poll(async () => (await rowIds()).length, POLL).toBeGreaterThan(9);
  });

  it('the period and a custom range show the API’s numbers for that range', async () => {
    const db = await openDatabase(server.dbFile);
    const now = Date.now();
    const day = 86_400_000;
    const row = (ageDays: number, tokens: number): UsageRow => ({
      id: randomUUID(),
      user_id: ids.bob,
      user_name: 'Bob',
      source: 'apikey',
      api_key_id: ids.bobKey,
      api_key_name: 'bob-laptop',
      model: 'archived-model',
      endpoint: '/v1/chat/completions',
      prompt_tokens: tokens / 2,
      completion_tokens: tokens / 2,
      total_tokens: tokens,
      duration_ms: 10,
      created_at: now - ageDays * day,
      usage_origin: 'provider',
      aborted: 0,
      stream: 0,
      upstream: 'backfill',
    });
    await insertUsageBatch(db, [row(3, 10_000), row(20, 200_000), row(100, 4_000_000)]);
    await db.close();

    const total = page.getByTestId('stat-total');
    const requests = page.getByTestId('stat-requests');
    for (const period of ['day', 'week', 'month', 'all'] as const) {
      await page
        .getByRole('button', { name: period[0]?.toUpperCase() + period.slice(1), exact: true })
        .click();
      const api = await usageApi(`period=${period}`);
      await expect
        .poll(async () => total.textContent(), POLL)
        .toContain(formatTokens(api.totals.total_tokens));
      expect(await requests.textContent()).toContain(formatCount(api.totals.request_count));
    }
    expect((await usageApi('period=all')).totals.total_tokens).toBeGreaterThan(
      (await usageApi('period=month')).totals.total_tokens,
    );

    const from = new Date(now - 101 * day).toISOString().slice(0, 10);
    const to = new Date(now - 99 * day).toISOString().slice(0, 10);
    await page.getByRole('button', { name: 'Custom' }).click();
    await page.getByLabel('From (UTC)', { exact: true }).fill(from);
    await page.getByLabel('To (UTC)', { exact: true }).fill(to);
    await page.getByRole('button', { name: 'Apply' }).click();
    const toExclusive = new Date(Date.parse(`${to}T00:00:00Z`) + day).toISOString();
    const api = await usageApi(`from=${from}T00:00:00Z&to=${toExclusive}`);
    expect(api.totals.total_tokens).toBe(4_000_000);
    await expect.poll(async () => total.textContent(), POLL).toContain(formatTokens(api.totals.total_tokens));
    expect(await requests.textContent()).toContain('1');
    await page.getByRole('tab', { name: 'Models' }).click();
    await page.getByRole('cell', { name: 'archived-model' }).waitFor();
    await screenshot(page, '13-custom-range');
    await page.getByRole('button', { name: 'Month', exact: true }).click();
  });

  it('more than 200 keys: the truncation warning', async () => {
    const db = await openDatabase(server.dbFile);
    const rowsToInsert: UsageRow[] = Array.from({ length: 205 }, (_, i) => ({
      id: randomUUID(),
      user_id: ids.carol,
      user_name: 'Carol',
      source: 'apikey',
      api_key_id: randomUUID(),
      api_key_name: `fleet-${String(i).padStart(3, '0')}`,
      model: 'demo',
      endpoint: '/v1/chat/completions',
      prompt_tokens: 1,
      completion_tokens: 1,
      total_tokens: 2,
      duration_ms: 1,
      created_at: Date.now() - 60_000,
      usage_origin: 'provider',
      aborted: 0,
      stream: 0,
      upstream: 'backfill',
    }));
    await insertUsageBatch(db, rowsToInsert);
    await db.close();
    await page.goto('/app/usage?tab=sources');
    await page.getByText('Showing top 200 keys. Apply a filter to narrow further.').waitFor();
    expect((await sourcesApi('period=month')).truncated).toBe(true);
    await screenshot(page, '14-truncated');
  });
});
