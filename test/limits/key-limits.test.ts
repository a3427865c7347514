import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/db.ts';
import {
  ask,
  type LimitsFixture,
  outcome,
  PROMPT_13,
  REQUEST_TOKENS,
  startLimitsFixture,
  tokensOf,
} from './support.ts';

/**
 * Issue #13 acceptance, single instance, with the official `openai` client: rpm, token budgets,
 * max_parallel, 64-request bursts, the 429 shapes and the x-ratelimit-* headers.
 */
describe.each(DIALECTS)('per-key limits on %s', (dialect) => {
  let f: LimitsFixture;

  beforeAll(async () => {
    f = await startLimitsFixture(dialect);
  });
  afterAll(async () => {
    await f?.close();
  });

  it('the test prompt is 13 tokens, as the fake upstream reports', () => {
    expect(tokensOf(PROMPT_13)).toBe(13);
  });

  it('rpm 5: exactly 5 successes, then 429 rate_limit_exceeded with Retry-After and the headers', async () => {
    const { client } = await f.createKey({ rpm: 5 });
    const results = [];
    for (let i = 0; i < 5; i++) {
      const { response } = await ask(client);
      results.push(response);
    }
    expect(results.map((r) => r.headers.get('x-ratelimit-limit-requests'))).toEqual([
      '5',
      '5',
      '5',
      '5',
      '5',
    ]);
    expect(results.map((r) => r.headers.get('x-ratelimit-remaining-requests'))).toEqual([
      '4',
      '3',
      '2',
      '1',
      '0',
    ]);
    expect(results[0]?.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$|^1m0s$/);
    for (let i = 0; i < 3; i++) {
      const failed = await outcome(ask(client));
      expect(failed.ok).toBe(false);
      if (failed.ok) return;
      expect(failed.status).toBe(429);
      expect(failed.type).toBe('rate_limit_exceeded');
      expect(failed.error.message).toMatch(/requests per minute \(rpm\): limit 5/);
      const retryAfter = Number(failed.error.headers?.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(failed.error.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
    }
  });

  it('a 1,000-token budget admits exactly floor(1000 / 19) = 52 requests, then insufficient_quota', async () => {
    const { client } = await f.createKey({ token_budget: 1000, budget_window: '1d' });
    let successes = 0;
    for (let i = 0; i < 60; i++) {
      const result = await outcome(ask(client));
      if (result.ok) {
        successes += 1;
        continue;
      }
      expect(result.status).toBe(429);
      expect(result.type).toBe('insufficient_quota');
      expect(result.error.message).toMatch(/token_budget/);
      expect(Number(result.error.headers?.get('retry-after'))).toBeGreaterThan(0);
      expect(result.error.headers?.get('x-ratelimit-limit-tokens')).toBe('1000');
      break;
    }
    expect(successes).toBe(Math.floor(1000 / REQUEST_TOKENS));
    await f.t.recorder.flushNow();
    const rows = await f.t.database.db.kysely.selectFrom('usage_records').select('total_tokens').execute();
    expect(rows.length).toBeGreaterThanOrEqual(successes);
  });

  it('64 concurrent requests never overshoot rpm or a token budget', async () => {
    const rpm = await f.createKey({ rpm: 10 });
    const rpmResults = await Promise.all(Array.from({ length: 64 }, () => outcome(ask(rpm.client))));
    expect(rpmResults.filter((r) => r.ok)).toHaveLength(10);
    expect(rpmResults.filter((r) => !r.ok && r.type === 'rate_limit_exceeded')).toHaveLength(54);

    const budget = await f.createKey({ token_budget: 500 });
    const budgetResults = await Promise.all(Array.from({ length: 64 }, () => outcome(ask(budget.client))));
    expect(budgetResults.filter((r) => r.ok)).toHaveLength(Math.floor(500 / REQUEST_TOKENS));
    expect(budgetResults.filter((r) => !r.ok && r.type === 'insufficient_quota')).toHaveLength(
      64 - Math.floor(500 / REQUEST_TOKENS),
    );
    const status = await f.t.app.inject({
      method: 'GET',
      url: '/api/auth/api-keys/limits',
      cookies: { session: f.admin.session },
    });
    const entry = status.json().keys.find((k: { id: string }) => k.id === budget.id);
    expect(entry.usage).toContainEqual(
      expect.objectContaining({
        limit: 'token_budget',
        used: Math.floor(500 / REQUEST_TOKENS) * REQUEST_TOKENS,
        max: 500,
      }),
    );
    expect(entry.exhausted).toBe(false);
  });

  it('max_parallel 2: a third request while two are in flight gets 429, and fits once they end', async () => {
    const { client } = await f.createKey({ max_parallel: 2 });
    const model = `fake-slow-${dialect}`;
    const first = Promise.all([ask(client, model), ask(client, model)]);
    await f.upstream.waitForRequestStart((r) => r.body?.model === model);
    await f.upstream.waitForRequestStart(
      (r) =>
        r.body?.model === model && f.upstream.requests.filter((x) => x.body?.model === model).length >= 2,
    );
    const third = await outcome(ask(client));
    expect(third.ok).toBe(false);
    if (!third.ok) {
      expect(third.type).toBe('rate_limit_exceeded');
      expect(third.error.message).toMatch(/max_parallel/);
    }
    await first;
    expect((await outcome(ask(client))).ok).toBe(true);
  });

  it('rejections are counted per key and in metrics; a bad limit is refused with the field named', async () => {
    const { id, client } = await f.createKey({ rpm: 1 });
    await outcome(ask(client));
    await outcome(ask(client));
    await outcome(ask(client));
    const status = await f.t.app.inject({
      method: 'GET',
      url: '/api/auth/api-keys/limits',
      cookies: { session: f.admin.session },
    });
    expect(status.json().keys.find((k: { id: string }) => k.id === id).rejected).toBe(2);
    const bad = await f.t.app.inject({
      method: 'PUT',
      url: `/api/auth/api-keys/${id}/limits`,
      cookies: { session: f.admin.session },
      payload: { rpm: -1 },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatch(/^rpm/);
    const metrics = await f.t.app.inject({
      method: 'GET',
      url: '/metrics',
      cookies: { session: f.admin.session },
    });
    expect(metrics.statusCode).toBe(200);
    const rejected = /keytally_limit_events_total\{kind="rejected",limit="rpm"\} (\d+)/.exec(metrics.body);
    expect(Number(rejected?.[1])).toBeGreaterThanOrEqual(2);
    expect(metrics.body).toMatch(/keytally_limit_events_total\{kind="hard_limit",limit="rpm"\} \d+/);
  });
});
