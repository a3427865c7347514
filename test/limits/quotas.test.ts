import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Account, registerAccount } from '../auth/support.ts';
import { DIALECTS } from '../helpers/db.ts';
import { FAKE_COMPLETION_TOKENS, FAKE_PROMPT_TOKENS } from '../helpers/fake-upstream.ts';
import { ask, type LimitsFixture, outcome, startLimitsFixture } from './support.ts';

/**
 * LocalAI's quota rules (localai-reference-control.md section 1) with the fixes of section 6 item 1:
 * exact routes and shapes, a real resets_at, Retry-After from the window, the served model,
 * negative limits and sub-second windows refused.
 */
describe.each(DIALECTS)('LocalAI quota rules on %s', (dialect) => {
  let f: LimitsFixture;
  let user: Account;

  beforeAll(async () => {
    f = await startLimitsFixture(dialect);
    user = await registerAccount(f.t.app, `quota-user-${dialect}@example.test`, 'Quota User');
  });
  afterAll(async () => {
    await f?.close();
  });

  const admin = (method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
    f.t.app.inject({ method, url, cookies: { session: f.admin.session }, ...(payload ? { payload } : {}) });
  const asUser = (url: string) => f.t.app.inject({ method: 'GET', url, cookies: { session: user.session } });

  it('validates the upsert body: window required and parsed as LocalAI does, no negatives, no sub-second windows', async () => {
    const cases: [unknown, RegExp][] = [
      [{ model: '', max_requests: 1 }, /^window is required$/],
      [{ model: '', max_requests: 1, window: '2d' }, /^invalid window duration: 2d/],
      [{ model: '', max_requests: 1, window: '500ms' }, /^invalid window duration: 500ms/],
      [{ model: '', max_requests: 1, window: '-1h' }, /^invalid window duration: -1h/],
      [{ model: '', max_requests: -1, window: '1h' }, /^max_requests: must not be negative/],
      [{ model: '', max_total_tokens: 1.5, window: '1h' }, /^max_total_tokens/],
    ];
    for (const [body, message] of cases) {
      const response = await admin('PUT', `/api/auth/admin/users/${user.id}/quotas`, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().error).toMatch(message);
    }
    const missing = await admin('PUT', '/api/auth/admin/users/no-such-user/quotas', { window: '1h' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'user not found' });
    expect((await admin('GET', '/api/auth/admin/users/no-such-user/quotas')).json()).toEqual({
      error: 'user not found',
    });
  });

  it('formats windows as LocalAI does (24h → 1d, 90m → 1h30m0s) and upserts by (user, model)', async () => {
    const first = await admin('PUT', `/api/auth/admin/users/${user.id}/quotas`, {
      model: 'fake-window',
      max_requests: 5,
      window: '24h',
    });
    expect(first.statusCode).toBe(200);
    expect(first.json().quota.window).toBe('1d');
    const second = await admin('PUT', `/api/auth/admin/users/${user.id}/quotas`, {
      model: 'fake-window',
      window: '90m',
    });
    expect(second.json().quota).toMatchObject({
      ID: first.json().quota.ID,
      MaxRequests: null,
      WindowSeconds: 5400,
      window: '1h30m0s',
    });
    const deleted = await admin('DELETE', `/api/auth/admin/users/${user.id}/quotas/${first.json().quota.ID}`);
    expect(deleted.json()).toEqual({ message: 'quota rule deleted' });
    const again = await admin('DELETE', `/api/auth/admin/users/${user.id}/quotas/${first.json().quota.ID}`);
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ error: 'quota rule not found' });
  });

  it('a rule set through the admin route blocks that model only; GET /api/auth/quota matches the usage endpoint', async () => {
    const saved = await admin('PUT', `/api/auth/admin/users/${user.id}/quotas`, {
      model: 'fake-model',
      max_requests: 3,
      max_total_tokens: null,
      window: '1h',
    });
    expect(saved.statusCode).toBe(200);
    const quota = saved.json().quota;
    expect(saved.json().message).toBe('quota rule saved');
    // The reference's raw struct keys, and snake_case beside them.
    for (const key of [
      'ID',
      'UserID',
      'Model',
      'MaxRequests',
      'MaxTotalTokens',
      'WindowSeconds',
      'CreatedAt',
      'UpdatedAt',
      'User',
    ]) {
      expect(quota).toHaveProperty(key);
    }
    expect(quota).toMatchObject({
      UserID: user.id,
      Model: 'fake-model',
      MaxRequests: 3,
      WindowSeconds: 3600,
      window: '1h',
      current_requests: 0,
    });

    const { client } = await f.createKey(undefined, user);
    for (let i = 0; i < 3; i++) expect((await outcome(ask(client))).ok).toBe(true);
    const blocked = await outcome(ask(client));
    expect(blocked.ok).toBe(false);
    if (!blocked.ok) {
      expect(blocked.status).toBe(429);
      expect(blocked.type).toBe('insufficient_quota');
      expect(blocked.error.message).toMatch(
        /Request quota exceeded for model fake-model: 3\/3 requests in 1h window/,
      );
      const retryAfter = Number(blocked.error.headers?.get('retry-after'));
      // When the oldest counted request leaves the hour, not the whole window from now.
      expect(retryAfter).toBeGreaterThan(3500);
      expect(retryAfter).toBeLessThanOrEqual(3600);
    }
    // Another model is not limited by that rule.
    expect((await outcome(ask(client, 'fake-other'))).ok).toBe(true);

    await f.t.recorder.flushNow();
    const quotas = (await asUser('/api/auth/quota')).json().quotas;
    expect(quotas).toHaveLength(1);
    const usage = (await asUser('/api/auth/usage?period=day')).json();
    const ofModel = usage.usage.filter((bucket: { model: string }) => bucket.model === 'fake-model');
    const requests = ofModel.reduce((sum: number, b: { request_count: number }) => sum + b.request_count, 0);
    const tokens = ofModel.reduce((sum: number, b: { total_tokens: number }) => sum + b.total_tokens, 0);
    expect(quotas[0]).toMatchObject({
      model: 'fake-model',
      max_requests: 3,
      current_requests: requests,
      current_total_tokens: tokens,
    });
    expect(requests).toBe(3);
    expect(tokens).toBe(3 * (FAKE_PROMPT_TOKENS + FAKE_COMPLETION_TOKENS));
    // A real resets_at: when the oldest counted row leaves the window, about an hour from now.
    const resetsIn = Date.parse(quotas[0].resets_at) - Date.now();
    expect(resetsIn).toBeGreaterThan(3_500_000);
    expect(resetsIn).toBeLessThanOrEqual(3_601_000);

    const me = (await asUser('/api/auth/me')).json();
    expect(me.quotas).toEqual(quotas);
    const adminView = (await admin('GET', `/api/auth/admin/users/${user.id}/quotas`)).json();
    expect(adminView.quotas).toEqual(quotas);
    // The admin user list carries `quotas` only for users that have rules.
    const listed = (await admin('GET', '/api/auth/admin/users')).json().users;
    expect(listed.find((u: { id: string }) => u.id === user.id).quotas).toEqual(quotas);
    expect(listed.find((u: { id: string }) => u.id === f.admin.id)).not.toHaveProperty('quotas');
  });

  it('never restricts admins, whose own rules are only reported', async () => {
    await admin('PUT', `/api/auth/admin/users/${f.admin.id}/quotas`, {
      model: '',
      max_requests: 0,
      window: '1h',
    });
    const { client } = await f.createKey();
    expect((await outcome(ask(client))).ok).toBe(true);
  });
});
