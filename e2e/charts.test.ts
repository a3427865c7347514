import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SourcesResponse, UsageResponse } from '../src/shared/usage.ts';
import { longLabel } from '../src/web/components/chart/time.ts';
import { formatChange, formatTokens } from '../src/web/format.ts';
import { demoContext, startDemoServer, VIEWPORTS } from './demo.ts';
import { hasHorizontalScroll, launchBrowser, type Server, screenshot } from './helpers.ts';

/**
 * The dashboard's charts and tables as a person uses them, on seed-demo data: the tooltip, colours
 * that stay with their key, the drill-in at 1440x900, phones, sorting and searching.
 */
const POLL = { timeout: 10_000, interval: 100 };

describe('dashboard charts on seed-demo data', { timeout: 90_000 }, () => {
  let server: Server & { sessionCookie: string };
  let browser: Browser;
  let page: Page;

  const api = async <T>(url: string): Promise<T> => (await page.request.get(url)).json() as Promise<T>;
  const rowIds = () =>
    page
      .locator('[data-testid="source-row"]')
      .evaluateAll((els) => els.map((el) => el.getAttribute('data-row-id') ?? ''));
  const legendColors = () =>
    page
      .getByTestId('series-legend')
      .evaluateAll((els) =>
        Object.fromEntries(els.map((el) => [el.getAttribute('data-series'), el.getAttribute('data-color')])),
      );
  /** Moves the mouse over the middle of bucket `index` of the chart; returns the label hovered. */
  const hoverBucket = async (chart: string, fraction: number) => {
    const over = page.locator(`[data-testid="${chart}"] .u-over`);
    const box = await over.boundingBox();
    if (!box) throw new Error('chart not drawn');
    await page.mouse.move(box.x + box.width * fraction, box.y + box.height / 2);
    const tooltip = page.getByTestId('chart-tooltip');
    await tooltip.waitFor();
    return tooltip;
  };

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDemoServer(), launchBrowser()]);
    const context = await demoContext(browser, server, VIEWPORTS.desktop, 'light');
    page = await context.newPage();
  });
  afterEach(async (test) => {
    if (test.task.result?.state === 'fail' && page && !page.isClosed())
      await screenshot(page, `failed-charts-${test.task.name.slice(0, 40)}`);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('time to the first chart on /app/usage, cold and warm (recorded, not asserted)', async () => {
    const context = await demoContext(browser, server, VIEWPORTS.desktop, 'light');
    const fresh = await context.newPage();
    const timeTo = async (load: () => Promise<unknown>) => {
      const started = Date.now();
      await load();
      await fresh.locator('[data-testid="time-chart"] canvas').waitFor();
      return Date.now() - started;
    };
    const cold = await timeTo(() => fresh.goto('/app/usage'));
    const warm = await timeTo(() => fresh.reload());
    console.log(JSON.stringify({ firstChartMs: { cold, warm }, data: 'seed-demo' }));
    expect(cold).toBeGreaterThan(0);
    await context.close();
  });

  it('the tooltip lists every series of the hovered bucket with its value and share', async () => {
    await page.goto('/app/usage');
    await page.locator('[data-testid="time-chart"] canvas').waitFor();
    const tooltip = await hoverBucket('time-chart', 0.5);
    const title = (await tooltip.locator('.chart-tooltip-title').textContent()) ?? '';
    const usage = await api<UsageResponse>('/api/auth/admin/usage?period=month');
    const labels = [...new Set(usage.usage.map((b) => b.bucket))];
    const label = labels.find((l) => longLabel(l) === title);
    expect(label, title).toBeDefined();
    const of = (field: 'prompt_tokens' | 'completion_tokens') =>
      usage.usage.filter((b) => b.bucket === label).reduce((sum, b) => sum + b[field], 0);
    const [prompt, completion] = [of('prompt_tokens'), of('completion_tokens')];
    const rows = await tooltip.locator('tbody tr').allTextContents();
    expect(rows).toHaveLength(2);
    const share = (part: number) => `${Math.round((part / (prompt + completion)) * 100)}%`;
    expect(rows).toContain(`Completion${formatTokens(completion)}${share(completion)}`);
    expect(rows).toContain(`Prompt${formatTokens(prompt)}${share(prompt)}`);
    expect(await tooltip.locator('tfoot').textContent()).toContain(formatTokens(prompt + completion));
    await screenshot(page, '30-tooltip');

    // The same numbers are reachable without a mouse: the table view.
    await page.mouse.move(0, 0);
    await page.getByRole('button', { name: 'Table' }).first().click();
    const row = page.getByTestId('chart-table').getByRole('row', { name: new RegExp(`^${title}`) });
    expect(await row.textContent()).toContain(formatTokens(prompt + completion));
    await page.getByRole('button', { name: 'Chart' }).first().click();
  });

  it('cards show the change against the previous period; key rows carry a sparkline', async () => {
    await page.goto('/app/usage?period=day');
    const usage = await api<UsageResponse>('/api/auth/admin/usage?period=day&compare=previous');
    const expected = formatChange(usage.totals.total_tokens, usage.previous?.total_tokens);
    expect(expected).not.toBeNull();
    await expect
      .poll(async () => page.getByTestId('change-total').textContent(), POLL)
      .toBe(`${expected} vs previous 24 h`);
    await page.getByRole('tab', { name: 'Sources' }).click();
    await page.locator('[data-testid="source-row"]').first().waitFor();
    const rows = await page.locator('[data-testid="source-row"]').count();
    expect(await page.locator('[data-testid="source-row"] [data-testid="sparkline"]').count()).toBe(rows);
    await page.getByRole('button', { name: 'Month', exact: true }).click();
  });

  it('All with a month of history is drawn in days, not one fat month bar', async () => {
    await page.goto('/app/usage?period=all');
    await page.locator('[data-testid="time-chart"] canvas').waitFor();
    await page.getByRole('button', { name: 'Table' }).first().click();
    const rows = page.getByTestId('chart-table').locator('tbody tr');
    await expect.poll(async () => rows.count(), POLL).toBeGreaterThan(28);
    expect(await rows.first().textContent()).toMatch(/^\w{3}, \w{3} \d{1,2}, \d{4}/);
    await page.getByRole('button', { name: 'Chart' }).first().click();
  });

  it('a key keeps its colour across Day and Month and across a reload', async () => {
    await page.goto('/app/usage?tab=sources');
    await page.locator('[data-testid="source-chart"] canvas').waitFor();
    const month = await legendColors();
    const host = page.locator('[data-testid="source-chart"] .chart-host');
    const monthLabel = await host.getAttribute('aria-label');
    // The day's answer first (it took over 10 s once in CI, with every suite running at once): the
    // legend keeps the month's series until it arrives.
    const dayAnswer = page.waitForResponse(
      (response) => response.url().includes('/usage/sources?') && response.url().includes('period=day'),
      { timeout: 45_000 },
    );
    await page.getByRole('button', { name: 'Day', exact: true }).click();
    await expect.poll(async () => new URL(page.url()).searchParams.get('period'), POLL).toBe('day');
    expect((await dayAnswer).status()).toBe(200);
    // The chart has redrawn with the day's buckets (hours, not days). Not the legend: on some days of
    // the demo data the day's series are the month's, in the same colours (what this test is about).
    await expect.poll(async () => host.getAttribute('aria-label'), POLL).not.toBe(monthLabel);
    const day = await legendColors();
    const shared = Object.keys(day).filter((id) => id in month && !id.startsWith('__other__'));
    expect(shared.length).toBeGreaterThan(0);
    // The largest series of the day has the colour it has in the month.
    const topOfDay = (await page.getByTestId('series-legend').first().getAttribute('data-series')) ?? '';
    expect(topOfDay in month).toBe(true);
    expect(day[topOfDay]).toBe(month[topOfDay]);
    await page.reload();
    await page.locator('[data-testid="source-chart"] canvas').waitFor();
    expect((await legendColors())[topOfDay]).toBe(day[topOfDay]);
    await page.getByRole('button', { name: 'Month', exact: true }).click();
    await expect.poll(async () => (await legendColors())[topOfDay], POLL).toBe(month[topOfDay]);
  });

  it('drill-in at 1440x900: the 10th row filters cards, ribbon, chart and table, and the chart stays in view', async () => {
    await page.goto('/app/usage?tab=sources');
    const tenth = page.locator('[data-testid="source-row"]').nth(9);
    await tenth.scrollIntoViewIfNeeded();
    const id = (await tenth.getAttribute('data-row-id')) ?? '';
    const sources = await api<SourcesResponse>('/api/auth/admin/usage/sources?period=month');
    const key = sources.totals.by_key.find((k) => k.api_key_id === id);
    const web = sources.totals.by_user_source?.find((e) => `${e.source}:${e.user_id}` === id);
    const tokens = key?.tokens ?? web?.tokens ?? -1;
    await tenth.click();
    await page.getByTestId('filter-chip').waitFor();
    // Table: only the selection. Cards: its numbers. Ribbon: its source alone.
    await expect.poll(rowIds, POLL).toEqual([id]);
    await expect
      .poll(async () => page.getByTestId('stat-total').textContent(), POLL)
      .toContain(formatTokens(tokens));
    // The drill-in may refetch (keep=<id>): poll rather than read a ribbon that is between answers.
    await expect
      .poll(async () => page.getByTestId('source-mix').textContent(), POLL)
      .toContain(key ? '100% API keys (1)' : id.startsWith('web') ? '100% Web UI' : '100% Legacy');
    // Chart: the selected series at the baseline, every other one faded; and on screen.
    const host = page.locator('[data-testid="source-chart"] .chart-host');
    await expect.poll(async () => (await host.getAttribute('data-stack'))?.split(' ')[0], POLL).toBe(id);
    const dimmed = ((await host.getAttribute('data-dimmed')) ?? '').split(' ');
    expect(dimmed).not.toContain(id);
    expect(dimmed.length).toBeGreaterThan(1);
    const box = await page.locator('[data-testid="source-chart"] canvas').first().boundingBox();
    expect(box).not.toBeNull();
    expect(box?.y ?? -1).toBeGreaterThanOrEqual(0);
    expect((box?.y ?? 0) + (box?.height ?? 0)).toBeLessThanOrEqual(VIEWPORTS.desktop.height);
    await page.screenshot({ path: 'e2e/screenshots/31-drill-in-viewport.png' });
    // The chip is the way back.
    await page.getByRole('button', { name: 'Clear filter' }).click();
    await expect.poll(async () => (await rowIds()).length, POLL).toBeGreaterThan(10);
    expect(await host.getAttribute('data-dimmed')).toBe('');
  });

  it('sorting toggles both ways from the column header', async () => {
    await page.goto('/app/usage?tab=sources');
    await page.locator('[data-testid="source-row"]').first().waitFor();
    const tokensOf = async () =>
      page
        .locator('[data-testid="source-row"] td.num:nth-last-child(3)')
        .evaluateAll((cells) =>
          cells.map((cell) => Number((cell.querySelector('span')?.title ?? '').replaceAll(',', ''))),
        );
    const header = page.getByRole('columnheader', { name: 'Tokens' });
    expect(await header.getAttribute('aria-sort')).toBe('descending');
    const descending = await tokensOf();
    expect(descending).toEqual([...descending].sort((a, b) => b - a));
    await header.getByRole('button').click();
    await expect.poll(async () => header.getAttribute('aria-sort'), POLL).toBe('ascending');
    const ascending = await tokensOf();
    expect(ascending).toEqual([...descending].reverse());
    expect(new URL(page.url()).searchParams.get('dir')).toBe('ascending');
    await header.getByRole('button').click();
    await expect.poll(async () => header.getAttribute('aria-sort'), POLL).toBe('descending');
    // Names start A to Z and reverse on the second click.
    const name = page.getByRole('columnheader', { name: 'Name' });
    await name.getByRole('button').click();
    await expect.poll(async () => name.getAttribute('aria-sort'), POLL).toBe('ascending');
    await name.getByRole('button').click();
    await expect.poll(async () => name.getAttribute('aria-sort'), POLL).toBe('descending');
    // The Models table toggles too.
    await page.getByRole('tab', { name: 'Models' }).click();
    const total = page.getByRole('columnheader', { name: 'Total' });
    await total.getByRole('button').click();
    await expect.poll(async () => total.getAttribute('aria-sort'), POLL).toBe('ascending');
  });

  it('search finds a user’s keys and Web UI row by the user’s name', async () => {
    await page.goto('/app/usage?tab=sources');
    await page.getByLabel('Search sources').fill('carol diaz');
    await expect.poll(async () => (await rowIds()).length, POLL).toBeGreaterThan(1);
    const sources = await api<SourcesResponse>('/api/auth/admin/usage/sources?period=month');
    const carol = [
      ...sources.totals.by_key.filter((k) => k.user_name.startsWith('Carol Diaz')).map((k) => k.api_key_id),
      ...(sources.totals.by_user_source ?? [])
        .filter((e) => e.user_name.startsWith('Carol Diaz'))
        .map((e) => `${e.source}:${e.user_id}`),
    ];
    expect((await rowIds()).sort()).toEqual(carol.sort());
    expect(carol.some((id) => id.startsWith('web:'))).toBe(true);
  });

  it('at 390 px the tables show names, tokens and last use without sideways scrolling', async () => {
    const context = await demoContext(browser, server, VIEWPORTS.phone, 'light');
    const phone = await context.newPage();
    const visible = async (header: string) => {
      const box = await phone.getByRole('columnheader', { name: header }).boundingBox();
      return box !== null && box.x >= 0 && box.x + box.width <= VIEWPORTS.phone.width;
    };
    await phone.goto('/app/usage?tab=sources');
    await phone.locator('[data-testid="source-row"]').first().waitFor();
    expect(await hasHorizontalScroll(phone)).toBe(false);
    expect(await visible('Tokens')).toBe(true);
    expect(await visible('Last used')).toBe(true);
    const cell = await phone.locator('[data-testid="source-row"]').first().locator('td').last().boundingBox();
    expect((cell?.x ?? 0) + (cell?.width ?? 999)).toBeLessThanOrEqual(VIEWPORTS.phone.width);
    await phone.goto('/app/usage');
    await phone.getByRole('columnheader', { name: 'Total' }).waitFor();
    expect(await visible('Total')).toBe(true);
    expect(await hasHorizontalScroll(phone)).toBe(false);
    await phone.goto('/app/usage?tab=users');
    await phone.locator('[data-testid="user-usage-row"]').first().waitFor();
    expect(await visible('Total')).toBe(true);
    // The Users page's row actions are reachable without scrolling sideways.
    await phone.goto('/app/users');
    await phone.locator('main table .row-actions button').first().waitFor();
    const edges = await phone
      .locator('main table .row-actions button')
      .evaluateAll((buttons) => buttons.map((b) => b.getBoundingClientRect().right));
    expect(edges.length).toBeGreaterThan(0);
    expect(Math.max(...edges)).toBeLessThanOrEqual(VIEWPORTS.phone.width);
    expect(await hasHorizontalScroll(phone)).toBe(false);
    await context.close();
  });
});
