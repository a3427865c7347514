import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Account, registerAccount } from '../auth/support.ts';
import { DIALECTS } from '../helpers/db.ts';
import { type LimitsFixture, startLimitsFixture } from './support.ts';

/** Issue #13 item 2: admins set defaults and maximums for new keys; users cannot go above them. */
describe.each(DIALECTS)('the key limit policy on %s', (dialect) => {
  let f: LimitsFixture;
  let user: Account;

  beforeAll(async () => {
    f = await startLimitsFixture(dialect);
    user = await registerAccount(f.t.app, `policy-user-${dialect}@example.test`, 'Policy User');
  });
  afterAll(async () => {
    await f?.close();
  });

  const call = (
    session: string,
    method: 'GET' | 'PUT' | 'POST',
    url: string,
    payload?: Record<string, unknown>,
  ): Promise<LightMyRequestResponse> =>
    f.t.app.inject({ method, url, cookies: { session }, ...(payload === undefined ? {} : { payload }) });
  const limitsOf = async (session: string, id: string) =>
    (await call(session, 'GET', '/api/auth/api-keys/limits'))
      .json()
      .keys.find((k: { id: string }) => k.id === id)?.limits;

  it('only admins read and set the policy; bad values name the field', async () => {
    expect((await call(user.session, 'GET', '/api/auth/admin/limits/policy')).statusCode).toBe(403);
    const bad = await call(f.admin.session, 'PUT', '/api/auth/admin/limits/policy', { maximums: { rpm: 0 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatch(/^maximums\.rpm/);
    const saved = await call(f.admin.session, 'PUT', '/api/auth/admin/limits/policy', {
      defaults: { rpm: 60, budget_window: '1d' },
      maximums: { rpm: 120, token_budget: 10_000 },
    });
    expect(saved.statusCode).toBe(200);
    const read = (await call(f.admin.session, 'GET', '/api/auth/admin/limits/policy')).json();
    expect(read.defaults).toMatchObject({ rpm: 60, token_budget: null, budget_window: '1d' });
    expect(read.maximums).toMatchObject({ rpm: 120, token_budget: 10_000 });
  });

  it("a user's key without limits gets the defaults, capped by the maximums", async () => {
    const created = await call(user.session, 'POST', '/api/auth/api-keys', { name: 'defaults' });
    expect(created.statusCode).toBe(201);
    expect(await limitsOf(user.session, created.json().id)).toMatchObject({
      rpm: 60,
      token_budget: 10_000,
      budget_window: '1d',
    });
  });

  it('a user cannot create or set limits above the maximums, nor leave a capped limit unlimited', async () => {
    const over = await call(user.session, 'POST', '/api/auth/api-keys', {
      name: 'greedy',
      limits: { rpm: 500, token_budget: 100 },
    });
    expect(over.statusCode).toBe(400);
    expect(over.json().error).toBe("limits.rpm: must be at most 120 (the administrator's maximum for keys)");
    const keys = (await call(user.session, 'GET', '/api/auth/api-keys')).json().keys;
    expect(keys.some((k: { name: string }) => k.name === 'greedy')).toBe(false);

    const ok = await call(user.session, 'POST', '/api/auth/api-keys', {
      name: 'modest',
      limits: { rpm: 100, token_budget: 5000 },
    });
    expect(ok.statusCode).toBe(201);
    const id = ok.json().id;
    const unlimited = await call(user.session, 'PUT', `/api/auth/api-keys/${id}/limits`, { rpm: 100 });
    expect(unlimited.statusCode).toBe(400);
    expect(unlimited.json().error).toMatch(/^token_budget: must be at most 10000/);
    // An admin may set anything on anyone's key.
    const raised = await call(f.admin.session, 'PUT', `/api/auth/admin/api-keys/${id}/limits`, {
      rpm: 10_000,
    });
    expect(raised.statusCode).toBe(200);
    expect(await limitsOf(user.session, id)).toMatchObject({ rpm: 10_000, token_budget: null });
    // Another user's key is not found through the self route.
    const foreign = await call(f.admin.session, 'PUT', `/api/auth/api-keys/${id}/limits`, { rpm: 1 });
    expect(foreign.statusCode).toBe(404);
  });
});
