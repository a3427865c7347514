import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Account, registerAccount } from '../auth/support.ts';
import { DIALECTS } from '../helpers/db.ts';
import { FAKE_COMPLETION_TOKENS, FAKE_PROMPT_TOKENS } from '../helpers/fake-upstream.ts';
import { ask, type LimitsFixture, outcome, startLimitsFixture } from './support.ts';

/**
 * USD budgets (issue #13 item 2, on the Cost work): a request reserves its cost, priced as usage is
 * (admin price: $1 / M input, $2 / M output), and settles to the row's cost_nanos. With max_tokens 6
 * and the fake's 13 + 6 tokens, a reservation is the real cost: 13 + 12 = 25 micro-USD.
 */
const REQUEST_NANOS = FAKE_PROMPT_TOKENS * 1000 + FAKE_COMPLETION_TOKENS * 2000;

describe.each(DIALECTS)('USD budgets on %s', (dialect) => {
  let f: LimitsFixture;
  let user: Account;

  beforeAll(async () => {
    f = await startLimitsFixture(dialect);
    user = await registerAccount(f.t.app, `usd-user-${dialect}@example.test`, 'USD User');
    const price = await f.t.app.inject({
      method: 'PUT',
      url: '/api/auth/admin/prices',
      cookies: { session: f.admin.session },
      payload: { model: 'fake-model', input: 1, output: 2, effective_from: '2020-01-01T00:00:00Z' },
    });
    expect(price.statusCode, price.body).toBeLessThan(300);
  });
  afterAll(async () => {
    await f?.close();
  });

  it('a key with a $0.0002 budget admits exactly 8 requests of $0.000025, then insufficient_quota', async () => {
    const { id, client } = await f.createKey({ usd_budget: 0.0002, budget_window: '1d' });
    let admitted = 0;
    for (let i = 0; i < 12; i++) {
      const result = await outcome(ask(client));
      if (result.ok) {
        admitted += 1;
        continue;
      }
      expect(result.type).toBe('insufficient_quota');
      expect(result.error.message).toMatch(
        /USD budget of API key .* \(usd_budget\): \$0\.000200 of \$0\.000200/,
      );
      break;
    }
    expect(admitted).toBe(Math.floor(200_000 / REQUEST_NANOS));
    const status = await f.t.app.inject({
      method: 'GET',
      url: '/api/auth/api-keys/limits',
      cookies: { session: f.admin.session },
    });
    const usd = status
      .json()
      .keys.find((k: { id: string }) => k.id === id)
      .usage.find((u: { limit: string }) => u.limit === 'usd_budget');
    expect(usd).toMatchObject({ used: (admitted * REQUEST_NANOS) / 1e9, max: 0.0002 });
  });

  it('a USD budget refuses a model without a price instead of letting it through uncounted', async () => {
    const { client } = await f.createKey({ usd_budget: 1 });
    const result = await outcome(ask(client, 'fake-other'));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.type).toBe('insufficient_quota');
      expect(result.error.message).toMatch(/No price is known for the model "fake-other"/);
    }
  });

  it("a user's USD budget covers all of that user's keys", async () => {
    const set = await f.t.app.inject({
      method: 'PUT',
      url: `/api/auth/admin/users/${user.id}/limits`,
      cookies: { session: f.admin.session },
      payload: { usd_budget: 0.0001, budget_window: '1d', soft_threshold: 50 },
    });
    expect(set.statusCode, set.body).toBe(200);
    const first = await f.createKey(undefined, user);
    const second = await f.createKey(undefined, user);
    const results = [];
    for (let i = 0; i < 3; i++) results.push((await outcome(ask(first.client))).ok);
    for (let i = 0; i < 3; i++) results.push((await outcome(ask(second.client))).ok);
    expect(results.filter(Boolean)).toHaveLength(Math.floor(100_000 / REQUEST_NANOS));
    const refused = await outcome(ask(second.client));
    expect(!refused.ok && refused.error.message).toMatch(/Your USD budget is exceeded \(user_usd_budget\)/);
    const mine = await f.t.app.inject({
      method: 'GET',
      url: '/api/auth/limits',
      cookies: { session: user.session },
    });
    expect(mine.json()).toMatchObject({
      user_id: user.id,
      limits: { usd_budget: 0.0001, budget_window: '1d', soft_threshold: 50 },
      soft_exceeded: true,
      exhausted: true,
    });
    const bad = await f.t.app.inject({
      method: 'PUT',
      url: `/api/auth/admin/users/${user.id}/limits`,
      cookies: { session: f.admin.session },
      payload: { usd_budget: -1 },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatch(/^usd_budget/);
  });
});
