import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/db.ts';
import { createTestPostgres, HAS_POSTGRES_SERVER, type TestPostgres } from '../helpers/postgres.ts';
import { type KeytallyProcess, runKeytally, startKeytally } from '../helpers/process.ts';
import { STRONG_PASSWORD } from './support.ts';

/**
 * Two keytally processes on one PostgreSQL database: credential changes made through one are
 * enforced by the other within one second (decisions.md section 4, LISTEN/NOTIFY). The credential
 * cache keeps entries for 10 s, so without the notification these bounds would be missed.
 */

const HMAC = 'multi-instance-hmac-secret-0123456789abcdef';
const BOUND_MS = 1000;

function sessionFrom(response: Response): string {
  for (const header of response.headers.getSetCookie()) {
    const match = /^session=([0-9a-f]{64});/.exec(header);
    if (match?.[1]) return match[1];
  }
  throw new Error('no session cookie');
}

/** Polls until `request` is refused (401); returns the milliseconds it took after `since`. */
async function msUntilRefused(request: () => Promise<Response>, since: number): Promise<number> {
  const deadline = since + 5000;
  while (Date.now() < deadline) {
    const response = await request();
    if (response.status === 401) return Date.now() - since;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Number.POSITIVE_INFINITY;
}

// NOTIFY between connections needs a PostgreSQL server (HAS_POSTGRES_SERVER).
describe.skipIf(!HAS_POSTGRES_SERVER)('two instances sharing PostgreSQL (needs a PostgreSQL server)', () => {
  let pg: TestPostgres;
  let a: KeytallyProcess;
  let b: KeytallyProcess;
  const dirs: string[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    pg = await createTestPostgres();
    env = {
      KEYTALLY_DATABASE_URL: pg.url,
      KEYTALLY_HMAC_SECRET: HMAC,
      KEYTALLY_REGISTRATION_MODE: 'open',
      KEYTALLY_LOG_LEVEL: 'warn',
    };
    const dataDir = () => {
      const dir = makeTempDir();
      dirs.push(dir);
      return dir;
    };
    // one after the other: the first applies the migrations
    a = await startKeytally({ ...env, KEYTALLY_DATA_DIR: dataDir() });
    b = await startKeytally({ ...env, KEYTALLY_DATA_DIR: dataDir() });
  }, 60_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await pg?.cleanup();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  const post = (base: string, path: string, body: unknown, session?: string, method = 'POST') =>
    fetch(`${base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(session ? { cookie: `session=${session}` } : {}) },
      body: JSON.stringify(body),
    });
  const meWithKey = (base: string, key: string) =>
    fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${key}` } });
  const meWithSession = (base: string, session: string) =>
    fetch(`${base}/api/auth/me`, { headers: { cookie: `session=${session}` } });

  let adminSession = '';
  let userSession = '';
  let userId = '';

  it('registers on A; the accounts authenticate on B', async () => {
    const admin = await post(a.baseUrl, '/api/auth/register', {
      email: 'admin@example.test',
      password: STRONG_PASSWORD,
    });
    expect(admin.status).toBe(201);
    adminSession = sessionFrom(admin);
    const user = await post(a.baseUrl, '/api/auth/register', {
      email: 'user@example.test',
      password: STRONG_PASSWORD,
    });
    expect(user.status).toBe(201);
    userSession = sessionFrom(user);
    userId = ((await user.json()) as { user: { id: string } }).user.id;
    expect((await meWithSession(b.baseUrl, userSession)).status).toBe(200);
  });

  it('a key revoked through A is refused by B within 1 s', async () => {
    const created = await post(a.baseUrl, '/api/auth/api-keys', { name: 'shared' }, userSession);
    expect(created.status).toBe(201);
    const { id, key } = (await created.json()) as { id: string; key: string };
    // B has now validated (and cached) the key
    expect((await meWithKey(b.baseUrl, key)).status).toBe(200);
    expect((await meWithKey(b.baseUrl, key)).status).toBe(200);
    const revoke = await fetch(`${a.baseUrl}/api/auth/api-keys/${id}`, {
      method: 'DELETE',
      headers: { cookie: `session=${userSession}` },
    });
    expect(revoke.status).toBe(200);
    const changedAt = Date.now();
    expect((await meWithKey(a.baseUrl, key)).status).toBe(401);
    expect(await msUntilRefused(() => meWithKey(b.baseUrl, key), changedAt)).toBeLessThanOrEqual(BOUND_MS);
  });

  it('a user disabled on A is refused on B within 1 s (keys and sessions)', async () => {
    const created = await post(a.baseUrl, '/api/auth/api-keys', { name: 'second' }, userSession);
    const { key } = (await created.json()) as { key: string };
    expect((await meWithKey(b.baseUrl, key)).status).toBe(200);
    expect((await meWithSession(b.baseUrl, userSession)).status).toBe(200);
    const disable = await post(
      a.baseUrl,
      `/api/auth/admin/users/${userId}/status`,
      { status: 'disabled' },
      adminSession,
      'PUT',
    );
    expect(disable.status).toBe(200);
    const changedAt = Date.now();
    expect(await msUntilRefused(() => meWithKey(b.baseUrl, key), changedAt)).toBeLessThanOrEqual(BOUND_MS);
    expect(await msUntilRefused(() => meWithSession(b.baseUrl, userSession), changedAt)).toBeLessThanOrEqual(
      BOUND_MS,
    );
  });

  it('a key revoked with `keytally key revoke` is refused by a running instance within 1 s', async () => {
    const enable = await post(
      a.baseUrl,
      `/api/auth/admin/users/${userId}/status`,
      { status: 'active' },
      adminSession,
      'PUT',
    );
    expect(enable.status).toBe(200);
    // B learns of the re-enable by NOTIFY, within the same 1 s bound: wait for it before using B
    const enabledAt = Date.now();
    while (Date.now() - enabledAt < 5000 && (await meWithSession(b.baseUrl, userSession)).status !== 200) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const created = await post(b.baseUrl, '/api/auth/api-keys', { name: 'cli-target' }, userSession);
    expect(created.status).toBe(201);
    const { id, key } = (await created.json()) as { id: string; key: string };
    expect((await meWithKey(a.baseUrl, key)).status).toBe(200);
    const dataDir = makeTempDir();
    dirs.push(dataDir);
    const cli = runKeytally(['key', 'revoke', id], { ...env, KEYTALLY_DATA_DIR: dataDir });
    expect(await cli.exited).toBe(0);
    const changedAt = Date.now();
    expect(await msUntilRefused(() => meWithKey(a.baseUrl, key), changedAt)).toBeLessThanOrEqual(BOUND_MS);
  });
  const chatWithKey = (base: string, key: string) =>
    fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] }),
    });

  it('rotation: the old secret works on both instances until the grace ends, then fails on both within 1 s', async () => {
    const created = await post(a.baseUrl, '/api/auth/api-keys', { name: 'rotating' }, userSession);
    const { id, key: oldKey } = (await created.json()) as { id: string; key: string };
    // both instances have validated (and cached) the old secret
    expect((await chatWithKey(a.baseUrl, oldKey)).status).toBe(200);
    expect((await chatWithKey(b.baseUrl, oldKey)).status).toBe(200);
    const rotate = await post(a.baseUrl, `/api/auth/api-keys/${id}/rotate`, { grace: 3 }, userSession);
    expect(rotate.status).toBe(200);
    const rotated = (await rotate.json()) as { id: string; key: string; previousKeyValidUntil: string };
    expect(rotated.id).toBe(id);
    const graceEnd = Date.parse(rotated.previousKeyValidUntil);
    // during the grace both secrets work on both instances
    for (const base of [a.baseUrl, b.baseUrl]) {
      expect((await chatWithKey(base, rotated.key)).status).toBe(200);
      expect((await chatWithKey(base, oldKey)).status).toBe(200);
    }
    expect(Date.now()).toBeLessThan(graceEnd);
    // every answered request is counted: the usage check below expects exactly these
    let served = 7;
    const counting = (base: string) => async () => {
      const response = await chatWithKey(base, oldKey);
      if (response.status === 200) served += 1;
      return response;
    };
    const [onA, onB] = await Promise.all([
      msUntilRefused(counting(a.baseUrl), graceEnd),
      msUntilRefused(counting(b.baseUrl), graceEnd),
    ]);
    // refused only once the grace has ended, and then within 1 s on both
    for (const ms of [onA, onB]) {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThanOrEqual(BOUND_MS);
    }
    expect((await chatWithKey(b.baseUrl, rotated.key)).status).toBe(200);

    // usage of both secrets, on both instances, is the one key's
    const deadline = Date.now() + 10_000;
    let requests = 0;
    while (Date.now() < deadline) {
      const usage = await fetch(`${a.baseUrl}/v1/usage?period=day`, {
        headers: { authorization: `Bearer ${rotated.key}` },
      });
      requests = ((await usage.json()) as { totals: { request_count: number } }).totals.request_count;
      if (requests >= served) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(requests).toBe(served);
  });

  it('rotation with grace 0 and disabling: the old secret / the key is refused by the other instance within 1 s', async () => {
    const created = await post(b.baseUrl, '/api/auth/api-keys', { name: 'at-once' }, userSession);
    const { id, key } = (await created.json()) as { id: string; key: string };
    expect((await chatWithKey(b.baseUrl, key)).status).toBe(200);
    const rotate = await post(a.baseUrl, `/api/auth/api-keys/${id}/rotate`, { grace: 0 }, userSession);
    expect(rotate.status).toBe(200);
    const changedAt = Date.now();
    expect(await msUntilRefused(() => chatWithKey(b.baseUrl, key), changedAt)).toBeLessThanOrEqual(BOUND_MS);
    const { key: next } = (await rotate.json()) as { key: string };
    expect((await chatWithKey(b.baseUrl, next)).status).toBe(200);
    const disable = await post(
      a.baseUrl,
      `/api/auth/api-keys/${id}`,
      { disabled: true },
      userSession,
      'PATCH',
    );
    expect(disable.status).toBe(200);
    const disabledAt = Date.now();
    expect(await msUntilRefused(() => chatWithKey(b.baseUrl, next), disabledAt)).toBeLessThanOrEqual(
      BOUND_MS,
    );
  });

  it('a user model allowlist set on A is enforced by B within 1 s', async () => {
    const created = await post(a.baseUrl, '/api/auth/api-keys', { name: 'allowlisted' }, userSession);
    const { key } = (await created.json()) as { key: string };
    expect((await chatWithKey(b.baseUrl, key)).status).toBe(200);
    const set = await post(
      a.baseUrl,
      `/api/auth/admin/users/${userId}/models`,
      { enabled: true, models: ['other'] },
      adminSession,
      'PUT',
    );
    expect(set.status).toBe(200);
    const changedAt = Date.now();
    const deadline = changedAt + 5000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await chatWithKey(b.baseUrl, key)).status;
      if (status === 403) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(status).toBe(403);
    expect(Date.now() - changedAt).toBeLessThanOrEqual(BOUND_MS);
  });
});
