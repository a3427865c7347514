import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageRecordRow } from '../../src/server/db/schema.ts';
import type { PricesResponse } from '../../src/shared/cost.ts';
import type { UsageResponse } from '../../src/shared/usage.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { startUsageUpstream, type UsageUpstream } from './usage-upstream.ts';

const ADMIN = { authorization: 'Bearer legacy-secret' };
const T0 = Date.UTC(2026, 11, 1, 10, 0, 0);

// Hand-computed costs. Rates are micro-USD per million tokens = pico-USD per token; a row's cost is
// the exact pico-USD sum rounded half up to nano-USD once.

describe.each(DIALECTS)('cost per usage row on %s (decisions.md section 8)', (dialect) => {
  let upstream: UsageUpstream;
  let t: TestApp;
  let key: string;
  let clock = T0;
  const seen = new Set<string>();

  beforeAll(async () => {
    upstream = await startUsageUpstream();
    t = await startTestApp({
      dialect,
      settings: { upstreamUrl: upstream.baseUrl, apiKeys: 'legacy-secret' },
      now: () => clock,
    });
    const user = await createUser(t.database.db, { name: 'Ann' });
    key = (await createApiKey(t.database.db, { userId: user.id, name: 'ci' })).key;
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  async function call(path: string, model: string, extra: Record<string, unknown> = {}): Promise<void> {
    const response = await t.app.inject({
      method: 'POST',
      url: path,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      payload: { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, ...extra },
    });
    expect(response.statusCode).toBe(200);
  }

  async function newRows(): Promise<UsageRecordRow[]> {
    await t.recorder.flushNow();
    const rows = await t.database.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .orderBy('created_at')
      .execute();
    const fresh = rows.filter((row) => !seen.has(row.id));
    for (const row of fresh) seen.add(row.id);
    return fresh;
  }

  async function putPrice(
    body: Record<string, unknown>,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await t.app.inject({
      method: 'PUT',
      url: '/api/auth/admin/prices',
      headers: ADMIN,
      payload: body,
    });
    return { status: response.statusCode, json: response.json() };
  }

  it('gpt-4o-mini from the catalogue, with cached and reasoning tokens', async () => {
    upstream.usage.set('gpt-4o-mini', {
      prompt_tokens: 1001,
      completion_tokens: 300,
      total_tokens: 1301,
      prompt_tokens_details: { cached_tokens: 400 },
      completion_tokens_details: { reasoning_tokens: 120 },
    });
    await call('/v1/chat/completions', 'gpt-4o-mini');
    // input $0.15, cached $0.075, output $0.60 per million:
    // 601 × 150,000 + 400 × 75,000 + 300 × 600,000 = 300,150,000 pico-USD = 300,150 nano-USD.
    const [row] = await newRows();
    expect(row).toMatchObject({
      model: 'gpt-4o-mini',
      cached_tokens: 400,
      cache_write_tokens: null,
      reasoning_tokens: 120,
      price_source: 'catalog',
    });
    expect(Number(row?.cost_nanos)).toBe(300_150);
  });

  it('the same usage streamed is priced the same', async () => {
    await call('/v1/chat/completions', 'gpt-4o-mini', {
      stream: true,
      stream_options: { include_usage: true },
    });
    const [row] = await newRows();
    expect(Number(row?.cost_nanos)).toBe(300_150);
    expect(row?.price_source).toBe('catalog');
  });

  it('a local model with an admin price, rounded once per row', async () => {
    const created = await putPrice({
      model: 'local-llama*',
      input: 0.123457,
      output: 0.987654,
      cached_input: 0.0123,
      effective_from: new Date(T0 - 60_000).toISOString(),
    });
    expect(created.status).toBe(200);
    upstream.usage.set('local-llama-3', {
      prompt_tokens: 777,
      completion_tokens: 55,
      total_tokens: 832,
      prompt_tokens_details: { cached_tokens: 100 },
      completion_tokens_details: { reasoning_tokens: 20 },
    });
    await call('/v1/chat/completions', 'local-llama-3');
    // 677 × 123,457 + 100 × 12,300 + 55 × 987,654 = 139,131,359 pico-USD → 139,131 nano-USD.
    const [row] = await newRows();
    expect(row).toMatchObject({ price_source: 'admin', cached_tokens: 100, reasoning_tokens: 20 });
    expect(Number(row?.cost_nanos)).toBe(139_131);
  });

  it('Anthropic cache reads and writes at their own rates; half a nano-USD rounds up', async () => {
    await putPrice({
      model: 'local-claude',
      input: 0.0005,
      output: 0.00125,
      cached_input: 0.00005,
      cache_write: 0.000625,
    });
    upstream.usage.set('local-claude', {
      input_tokens: 3,
      cache_creation_input_tokens: 2,
      cache_read_input_tokens: 10,
      output_tokens: 1,
    });
    await call('/v1/messages', 'local-claude');
    // 3 × 500 + 10 × 50 + 2 × 625 + 1 × 1,250 = 4,500 pico-USD = 4.5 nano-USD → 5.
    const [row] = await newRows();
    expect(row).toMatchObject({
      prompt_tokens: 15,
      cached_tokens: 10,
      cache_write_tokens: 2,
      price_source: 'admin',
    });
    expect(Number(row?.cost_nanos)).toBe(5);
  });

  it('an unpriced model records none (never $0) and counts in unpriced_requests', async () => {
    await call('/v1/chat/completions', 'mystery-model');
    const [row] = await newRows();
    expect(row?.price_source).toBe('none');
    expect(row?.cost_nanos).toBeNull();
    const response = await t.app.inject({
      method: 'GET',
      url: '/api/auth/admin/usage?period=all',
      headers: ADMIN,
    });
    const body = response.json() as UsageResponse;
    expect(body.totals.unpriced_requests).toBe(1);
    expect(body.totals.cost).toBe((300_150 * 2 + 139_131 + 5) / 1e9);
    const mystery = body.usage.find((bucket) => bucket.model === 'mystery-model');
    expect(mystery).toMatchObject({ cost: 0, unpriced_requests: 1 });
    const prices = (
      await t.app.inject({ method: 'GET', url: '/api/auth/admin/prices', headers: ADMIN })
    ).json() as PricesResponse;
    expect(prices.unpriced_models).toEqual(['mystery-model']);
    // Once a price covers it, it is no longer offered (its past request stays unpriced until a reprice).
    await putPrice({ model: 'mystery-*', input: 1, output: 1 });
    const after = (
      await t.app.inject({ method: 'GET', url: '/api/auth/admin/prices', headers: ADMIN })
    ).json() as PricesResponse;
    expect(after.unpriced_models).toEqual([]);
  });

  it('a new price applies only to rows recorded from its effective time on', async () => {
    const later = T0 + 3_600_000;
    await putPrice({
      model: 'local-llama-3',
      input: 1,
      output: 2,
      effective_from: new Date(later).toISOString(),
    });
    upstream.usage.set('local-llama-3', { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 });
    clock = later - 1;
    await call('/v1/chat/completions', 'local-llama-3');
    clock = later;
    await call('/v1/chat/completions', 'local-llama-3');
    const [before, after] = await newRows();
    // Before: the glob's price (10 × 123,457 + 10 × 987,654 pico-USD); after: the exact name's.
    expect(Number(before?.cost_nanos)).toBe(Math.round((10 * 123_457 + 10 * 987_654) / 1000));
    expect(Number(after?.cost_nanos)).toBe((10 * 1_000_000 + 10 * 2_000_000) / 1000);
    clock = T0;
  });

  it('the export carries the details, the cost in USD and the price source', async () => {
    const response = await t.app.inject({
      method: 'GET',
      url: '/api/auth/admin/usage/export?format=ndjson&period=all',
      headers: ADMIN,
    });
    const rows = response.body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows.find((row) => row.model === 'gpt-4o-mini')).toMatchObject({
      cached_tokens: 400,
      cache_write_tokens: null,
      reasoning_tokens: 120,
      cost: 0.00030015,
      price_source: 'catalog',
    });
    expect(rows.find((row) => row.model === 'mystery-model')).toMatchObject({
      cost: null,
      price_source: 'none',
    });
    const csv = await t.app.inject({
      method: 'GET',
      url: '/api/auth/admin/usage/export?format=csv&period=all',
      headers: ADMIN,
    });
    const [header, ...lines] = csv.body.split('\r\n');
    expect(header?.endsWith(',cached_tokens,cache_write_tokens,reasoning_tokens,cost,price_source')).toBe(
      true,
    );
    // Every request of this file started at the same instant: find the line by its model.
    const mini = lines.find((line) => line.includes(',gpt-4o-mini,'));
    expect(mini?.endsWith(',400,,120,0.00030015,catalog')).toBe(true);
  });

  it('Prometheus counts cost in USD by source and model', async () => {
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: ADMIN });
    expect(metrics.body).toContain(
      `keytally_cost_usd_total{source="apikey",model="gpt-4o-mini"} ${(300_150 * 2) / 1e9}`,
    );
  });

  it('rejects a bad price with 400 naming the field', async () => {
    const negative = await putPrice({ model: 'x', input: -1, output: 1 });
    expect(negative.status).toBe(400);
    expect(JSON.stringify(negative.json)).toContain('input');
    const precise = await putPrice({ model: 'x', input: 0.0000001, output: 1 });
    expect(precise.status).toBe(400);
    expect(JSON.stringify(precise.json)).toContain('6 decimals');
    const missing = await putPrice({ input: 1, output: 1 });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.json)).toContain('model');
  });
});
