import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRONG_PASSWORD } from '../auth/support.ts';
import { makeTempDir } from '../helpers/db.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { createTestPostgres, HAS_POSTGRES_SERVER, type TestPostgres } from '../helpers/postgres.ts';
import { type KeytallyProcess, startKeytally } from '../helpers/process.ts';
import { PROMPT_13, REQUEST_TOKENS } from './support.ts';

/**
 * Counters survive a restart (issue #13, item 4): after SIGTERM and after kill -9 mid-window, the
 * rpm, the token budget and the quota counts are what they were, rebuilt from the rollups plus the
 * journal. The flush interval is an hour, so before the kill the rows exist only in the journal.
 */
const DIALECTS = ['sqlite', ...(HAS_POSTGRES_SERVER ? ['postgres'] : [])] as const;

describe.each(DIALECTS)('limits across restarts on %s', (dialect) => {
  let upstream: FakeUpstream;
  let pg: TestPostgres | undefined;
  let proc: KeytallyProcess | undefined;
  let env: Record<string, string>;
  const dataDir = makeTempDir();
  let session = '';
  let userSession = '';
  let keyId = '';
  let key = '';

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    pg = dialect === 'postgres' ? await createTestPostgres() : undefined;
    env = {
      KEYTALLY_DATA_DIR: dataDir,
      KEYTALLY_UPSTREAM_URL: upstream.baseUrl,
      KEYTALLY_HMAC_SECRET: 'restart-limits-hmac-secret-0123456789abcdef',
      KEYTALLY_REGISTRATION_MODE: 'open',
      KEYTALLY_USAGE_FLUSH_MS: '3600000',
      KEYTALLY_LOG_LEVEL: 'warn',
      ...(pg ? { KEYTALLY_DATABASE_URL: pg.url } : {}),
    };
    proc = await startKeytally(env);
  }, 60_000);
  afterAll(async () => {
    await proc?.stop('SIGKILL');
    await upstream?.close();
    await pg?.cleanup();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const call = (method: string, path: string, body?: unknown, cookie?: string) =>
    fetch(`${proc?.baseUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie: `session=${cookie}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const sessionOf = (response: Response) =>
    /session=([0-9a-f]{64})/.exec(response.headers.getSetCookie().join(';'))?.[1] ?? '';
  const chat = () =>
    fetch(`${proc?.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({
        model: 'fake-model',
        messages: [{ role: 'user', content: PROMPT_13 }],
        max_tokens: 6,
      }),
    });
  const state = async () => {
    const keys = (await (await call('GET', '/api/auth/api-keys/limits', undefined, userSession)).json()) as {
      keys: { id: string; usage: { limit: string; used: number }[] }[];
    };
    const usage = keys.keys.find((k) => k.id === keyId)?.usage ?? [];
    const quota = (await (await call('GET', '/api/auth/quota', undefined, userSession)).json()) as {
      quotas: { current_requests: number; current_total_tokens: number }[];
    };
    return {
      rpm: usage.find((u) => u.limit === 'rpm')?.used,
      budget: usage.find((u) => u.limit === 'token_budget')?.used,
      quotaRequests: quota.quotas[0]?.current_requests,
      quotaTokens: quota.quotas[0]?.current_total_tokens,
    };
  };

  it('sets up a user, a key with rpm 4 and a budget, and a quota rule; spends 3 requests', async () => {
    const admin = await call('POST', '/api/auth/register', {
      email: 'admin@example.test',
      password: STRONG_PASSWORD,
    });
    session = sessionOf(admin);
    const user = await call('POST', '/api/auth/register', {
      email: 'user@example.test',
      password: STRONG_PASSWORD,
    });
    userSession = sessionOf(user);
    const userId = ((await user.json()) as { user: { id: string } }).user.id;
    const rule = await call(
      'PUT',
      `/api/auth/admin/users/${userId}/quotas`,
      { model: '', max_total_tokens: 10_000, window: '1d' },
      session,
    );
    expect(rule.status).toBe(200);
    const created = await call(
      'POST',
      '/api/auth/api-keys',
      { name: 'restart', limits: { rpm: 4, token_budget: 1000, budget_window: '1d' } },
      userSession,
    );
    expect(created.status).toBe(201);
    ({ id: keyId, key } = (await created.json()) as { id: string; key: string });
    for (let i = 0; i < 3; i++) expect((await chat()).status).toBe(200);
    expect(await state()).toEqual({
      rpm: 3,
      budget: 3 * REQUEST_TOKENS,
      quotaRequests: 3,
      quotaTokens: 3 * REQUEST_TOKENS,
    });
  });

  it('kill -9: every counter is rebuilt from the journal', async () => {
    expect(await proc?.stop('SIGKILL')).toBe('SIGKILL');
    proc = await startKeytally(env);
    expect(await state()).toEqual({
      rpm: 3,
      budget: 3 * REQUEST_TOKENS,
      quotaRequests: 3,
      quotaTokens: 3 * REQUEST_TOKENS,
    });
    expect((await chat()).status).toBe(200);
    const refused = await chat();
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { type: string } }).error.type).toBe('rate_limit_exceeded');
  });

  it('SIGTERM: every counter is rebuilt from the database', async () => {
    expect(await proc?.stop('SIGTERM')).toBe(0);
    proc = await startKeytally(env);
    expect(await state()).toEqual({
      rpm: 4,
      budget: 4 * REQUEST_TOKENS,
      quotaRequests: 4,
      quotaTokens: 4 * REQUEST_TOKENS,
    });
    expect((await chat()).status).toBe(429);
  });
});
