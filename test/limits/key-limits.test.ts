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
/** Polls `check` every 20 ms for up to 5 s (a reservation freed by a socket's close comes a tick later). */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; tries < 250; tries += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('waitFor: never true');
}

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

  it('max_parallel 1 is freed however a request ends: answered, refused upstream, cut, streamed, abandoned', async () => {
    const { id, key, client } = await f.createKey({ max_parallel: 1, rpm: 1000 });
    const inFlight = async () => {
      const status = await f.t.app.inject({
        method: 'GET',
        url: '/api/auth/api-keys/limits',
        cookies: { session: f.admin.session },
      });
      const key = status.json().keys.find((k: { id: string }) => k.id === id);
      return key.usage.find((u: { limit: string }) => u.limit === 'max_parallel').used as number;
    };
    const next = async () => {
      // The slot is free again: the next request is admitted.
      expect(await inFlight()).toBe(0);
      expect((await outcome(ask(client))).ok).toBe(true);
    };
    const chat = (model: string, extra: Record<string, unknown> = {}, signal?: AbortSignal) =>
      fetch(`${f.t.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model,
          messages: [{ role: 'user', content: PROMPT_13 }],
          max_tokens: 6,
          ...extra,
        }),
        signal,
      });
    // Answered: settled by its usage row; the answer carries the key's headers.
    const answered = await chat('fake-model');
    expect(answered.status).toBe(200);
    // Of the two request limits, max_parallel has the least room: its numbers are the headers'.
    expect(answered.headers.get('x-ratelimit-limit-requests')).toBe('1');
    expect(answered.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    await answered.text();
    await next();
    // Refused by the upstream (no usage row): freed once the error answer is out, which still says the limits.
    const refused = await chat(`fake-500-${dialect}`);
    expect(refused.status).toBe(500);
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBe('1');
    await refused.text();
    await next();
    // The client leaves while the upstream is still thinking.
    const leaving = new AbortController();
    const cut = chat(`fake-slow-parallel-${dialect}`, {}, leaving.signal).catch(() => null);
    await f.upstream.waitForRequestStart((r) => r.body?.model === `fake-slow-parallel-${dialect}`);
    leaving.abort();
    await cut;
    await waitFor(async () => (await inFlight()) === 0);
    await next();
    // Streamed to its end, and a stream the client abandons half-way.
    const streamed = await chat('fake-model', { stream: true });
    expect(streamed.headers.get('x-ratelimit-remaining-requests')).not.toBeNull();
    await streamed.text();
    await next();
    const abandoning = new AbortController();
    const long = await chat(`fake-long-${dialect}`, { stream: true }, abandoning.signal);
    const reader = long.body?.getReader();
    await reader?.read();
    abandoning.abort();
    await reader?.cancel().catch(() => {});
    await waitFor(async () => (await inFlight()) === 0);
    await next();
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
