import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_TTL_MS } from '../../src/server/auth/credential-cache.ts';
import { openDatabase } from '../../src/server/db/connection.ts';
import { freshIp, registerAccount, STRONG_PASSWORD } from '../auth/support.ts';
import { startTcpProxy, type TcpProxy } from '../gateway/tcp-proxy.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../helpers/db.ts';
import { createApiKey } from '../helpers/factories.ts';

/**
 * PostgreSQL becomes unreachable (a TCP proxy in front of it is cut); SQLite cannot be written (another
 * connection holds an exclusive lock past the busy timeout). Non-proxy routes answer 503 with
 * Retry-After in their own error shape, never 500.
 */
describe.each(DIALECTS)('database outage on non-proxy routes on %s (issue 11, item 5)', (dialect) => {
  let direct: TestDatabase;
  let proxy: TcpProxy | undefined;
  let t: TestApp;
  let clock = Date.now();
  let session = '';
  let key = '';
  const lines: string[] = [];

  beforeAll(async () => {
    direct = await createTestDatabase(dialect);
    let database = direct;
    if (dialect === 'postgres') {
      const target = new URL(direct.url);
      proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      const url = proxy.rewrite(direct.url);
      const db = await openDatabase(url);
      database = { ...direct, url, db, close: () => db.close() };
    }
    t = await startTestApp({
      dialect,
      database,
      now: () => clock,
      settings: { logLevel: 'info', usageFlushMs: '3600000' },
      logDestination: { write: (line) => lines.push(line) },
    });
    const admin = await registerAccount(t.app, 'admin@example.test');
    session = admin.session;
    key = (await createApiKey(direct.db, { userId: admin.id, name: 'outage' })).key;
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await direct?.close();
  });

  const login = () =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      remoteAddress: freshIp(),
      payload: { email: 'admin@example.test', password: STRONG_PASSWORD },
    });
  const usage = () => t.app.inject({ method: 'GET', url: '/api/auth/usage', cookies: { session } });
  const ownUsage = () =>
    t.app.inject({ method: 'GET', url: '/v1/usage', headers: { authorization: `Bearer ${key}` } });
  const models = () =>
    t.app.inject({ method: 'GET', url: '/v1/models', headers: { authorization: `Bearer ${key}` } });

  /** Runs `during` while the database is out; returns once it is back. */
  async function outage(during: () => Promise<void>): Promise<void> {
    if (proxy) {
      proxy.cut();
      try {
        await during();
      } finally {
        proxy.restore();
      }
      return;
    }
    const locker = new SqliteDatabase(direct.url);
    locker.exec('BEGIN EXCLUSIVE');
    try {
      await during();
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
  }

  it('login and usage answer 503 + Retry-After in their shapes, not 500', async () => {
    expect((await usage()).statusCode).toBe(200);
    expect((await ownUsage()).statusCode).toBe(200);
    await outage(async () => {
      const refused = await login();
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect(refused.json()).toEqual({ error: expect.stringMatching(/database is unavailable/) });
      const created = await t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session },
        payload: { name: 'during-outage' },
      });
      expect(created.statusCode).toBe(503);
      if (dialect === 'postgres') {
        // SQLite keeps reading in WAL mode while another connection writes: only writes wait.
        const listed = await usage();
        expect(listed.statusCode).toBe(503);
        expect(listed.headers['retry-after']).toBe('5');
        expect(listed.json()).toEqual({ error: expect.any(String) });
        const own = await ownUsage();
        expect(own.statusCode).toBe(503);
        expect(own.json()).toEqual({
          error: { message: expect.any(String), type: 'service_unavailable', code: null },
        });
      }
    });
    expect((await login()).statusCode).toBe(200);
  });

  it('logs the stale-cache warning once per outage and once at its end, counting in a metric', async () => {
    expect((await models()).statusCode).toBe(200);
    clock += CACHE_TTL_MS + 1000;
    lines.length = 0;
    // The credential tables cannot be read (on SQLite, a lock does not stop reads).
    const hide = dialect === 'sqlite';
    if (hide) await sql`alter table api_keys rename to api_keys_away`.execute(direct.db.kysely);
    try {
      await outage(async () => {
        for (let i = 0; i < 20; i += 1) expect((await models()).statusCode).toBe(200);
      });
    } finally {
      if (hide) await sql`alter table api_keys_away rename to api_keys`.execute(direct.db.kysely);
    }
    const stale = () => lines.filter((line) => /stale cache/.test(line));
    const back = () => lines.filter((line) => /database available again/.test(line));
    expect(stale()).toHaveLength(1);
    expect(JSON.parse(stale()[0] ?? '{}').level).toBe(40);
    expect(back()).toHaveLength(0);
    clock += CACHE_TTL_MS + 1000;
    expect((await models()).statusCode).toBe(200);
    clock += CACHE_TTL_MS + 1000;
    expect((await models()).statusCode).toBe(200);
    expect(back()).toHaveLength(1);
    expect(JSON.parse(back()[0] ?? '{}')).toMatchObject({ staleServed: 20 });
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics', cookies: { session } });
    expect(metrics.body).toMatch(/^keytally_stale_credentials_served_total 20$/m);
  });
});
