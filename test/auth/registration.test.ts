import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/server/auth/hash.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../helpers/db.ts';
import { cookieValue, freshIp, login, STRONG_PASSWORD } from './support.ts';

const HOUR = 3_600_000;

describe.each(DIALECTS)('registration modes and invites on %s', (dialect) => {
  let database: TestDatabase;
  let approval: TestApp;
  let invite: TestApp;
  let clock = Date.now();
  let adminSession = '';

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    const now = () => clock;
    approval = await startTestApp({ dialect, database, now, settings: { registrationMode: 'approval' } });
    invite = await startTestApp({
      dialect,
      database,
      now,
      settings: { registrationMode: 'invite', adminEmail: 'owner@example.test' },
    });
  });
  afterAll(async () => {
    await approval?.close();
    await invite?.close();
    await database?.close();
  });

  const register = (t: TestApp, body: Record<string, unknown>) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      remoteAddress: freshIp(),
      payload: { password: STRONG_PASSWORD, ...body },
    });

  const createInvite = async (t: TestApp, body: Record<string, unknown> = {}) => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/auth/admin/invites',
      cookies: { session: adminSession },
      payload: body,
    });
    expect(response.statusCode).toBe(201);
    return response.json() as { id: string; code: string; codePrefix: string; expiresAt: string };
  };

  it('status reports no users before the first registration, anonymously', async () => {
    const status = await approval.app.inject({ method: 'GET', url: '/api/auth/status' });
    expect(status.statusCode).toBe(200);
    expect(status.json()).toMatchObject({ hasUsers: false, registrationMode: 'approval', user: null });
  });

  it('the first user is admin and never gated, even in approval mode', async () => {
    const first = await register(approval, { email: 'root@example.test', name: 'Root' });
    expect(first.statusCode).toBe(201);
    expect(first.json().user).toMatchObject({ role: 'admin', email: 'root@example.test' });
    adminSession = cookieValue(first, 'session') ?? '';
    expect(adminSession).toMatch(/^[0-9a-f]{64}$/);
  });

  it('approval mode: pending until an admin activates the account', async () => {
    const response = await register(approval, { email: 'wait@example.test', name: 'Wait' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ pending: true });
    expect(cookieValue(response, 'session')).toBeUndefined();
    const refused = await login(approval.app, 'wait@example.test');
    expect(refused.statusCode).toBe(403);
    const users = await approval.app.inject({
      method: 'GET',
      url: '/api/auth/admin/users',
      cookies: { session: adminSession },
    });
    const pending = users.json().users.find((u: { email: string }) => u.email === 'wait@example.test');
    expect(pending).toMatchObject({ status: 'pending', role: 'user' });
    const activate = await approval.app.inject({
      method: 'PUT',
      url: `/api/auth/admin/users/${pending.id}/status`,
      cookies: { session: adminSession },
      payload: { status: 'active' },
    });
    expect(activate.statusCode).toBe(200);
    expect((await login(approval.app, 'wait@example.test')).statusCode).toBe(200);
  });

  it('approval mode: a valid invite skips approval', async () => {
    const { code } = await createInvite(approval);
    const response = await register(approval, { email: 'invited@example.test', inviteCode: code });
    expect(response.statusCode).toBe(201);
    expect(response.json().user).toMatchObject({ role: 'user', status: 'active' });
  });

  it('invite mode: code required, bad/used/expired codes refused, the admin email never gated', async () => {
    const none = await register(invite, { email: 'nocode@example.test' });
    expect(none.statusCode).toBe(400);
    expect(none.json().error).toMatch(/invite code/);
    const bad = await register(invite, { email: 'badcode@example.test', inviteCode: 'f'.repeat(64) });
    expect(bad.statusCode).toBe(400);
    const { code } = await createInvite(invite);
    const ok = await register(invite, { email: 'coded@example.test', inviteCode: code });
    expect(ok.statusCode).toBe(201);
    const reused = await register(invite, { email: 'reuse@example.test', inviteCode: code });
    expect(reused.statusCode).toBe(400);
    const short = await createInvite(invite, { expiresInHours: 1 });
    clock += 2 * HOUR;
    try {
      const expired = await register(invite, { email: 'late@example.test', inviteCode: short.code });
      expect(expired.statusCode).toBe(400);
    } finally {
      clock -= 2 * HOUR;
    }
    const owner = await register(invite, { email: 'Owner@Example.test' });
    expect(owner.statusCode).toBe(201);
    expect(owner.json().user).toMatchObject({ role: 'admin' });
  });

  it('invites: code shown once, only its HMAC and prefix stored, listed, unused ones deletable', async () => {
    const created = await createInvite(invite, { expiresInHours: 24 });
    expect(created.code).toMatch(/^[0-9a-f]{64}$/);
    expect(created.codePrefix).toBe(created.code.slice(0, 8));
    expect(Date.parse(created.expiresAt)).toBe(clock + 24 * HOUR);
    const row = await database.db.kysely
      .selectFrom('invites')
      .selectAll()
      .where('id', '=', created.id)
      .executeTakeFirstOrThrow();
    expect(row.code_hash).toBe(hashSecret(TEST_HMAC_SECRET, created.code));
    expect(JSON.stringify(row)).not.toContain(created.code);
    const list = await invite.app.inject({
      method: 'GET',
      url: '/api/auth/admin/invites',
      cookies: { session: adminSession },
    });
    expect(list.statusCode).toBe(200);
    const listed = list.json().invites as { id: string; usedBy: string | null }[];
    expect(listed.some((i) => i.id === created.id)).toBe(true);
    expect(JSON.stringify(listed)).not.toContain(created.code);
    const used = listed.find((i) => i.usedBy !== null);
    expect(used).toBeDefined();
    const del = (id: string) =>
      invite.app.inject({
        method: 'DELETE',
        url: `/api/auth/admin/invites/${id}`,
        cookies: { session: adminSession },
      });
    expect((await del(created.id)).statusCode).toBe(200);
    expect((await del(created.id)).statusCode).toBe(404);
    expect((await del(used?.id ?? '')).statusCode).toBe(404);
    const bad = await invite.app.inject({
      method: 'POST',
      url: '/api/auth/admin/invites',
      cookies: { session: adminSession },
      payload: { expiresInHours: 'soon' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatch(/^expiresInHours: /);
  });

  it('admin password reset ends the user sessions and sets the new password', async () => {
    const session = cookieValue(await login(approval.app, 'wait@example.test'), 'session') ?? '';
    const users = await approval.app.inject({
      method: 'GET',
      url: '/api/auth/admin/users',
      cookies: { session: adminSession },
    });
    const target = users.json().users.find((u: { email: string }) => u.email === 'wait@example.test');
    const reset = await approval.app.inject({
      method: 'PUT',
      url: `/api/auth/admin/users/${target.id}/password`,
      cookies: { session: adminSession },
      payload: { password: 'reset password 123' },
    });
    expect(reset.statusCode).toBe(200);
    const me = await approval.app.inject({ method: 'GET', url: '/api/auth/me', cookies: { session } });
    expect(me.statusCode).toBe(401);
    expect((await login(approval.app, 'wait@example.test', 'reset password 123')).statusCode).toBe(200);
  });
});
