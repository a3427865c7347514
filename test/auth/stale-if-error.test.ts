import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_TTL_MS } from '../../src/server/auth/credential-cache.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';

/**
 * While the database cannot be read, a key that was validated before keeps working from its
 * expired cache entry (requests go on being served and journaled); an unknown key gets 503 with
 * Retry-After instead of a 401 that would tell a valid client its key is wrong.
 */
describe.each(DIALECTS)('credentials during a database outage on %s', (dialect) => {
  let clock = Date.now();
  let t: TestApp;
  let key = '';

  beforeAll(async () => {
    t = await startTestApp({ dialect, now: () => clock, settings: { usageFlushMs: '3600000' } });
    const user = await createUser(t.database.db);
    key = (await createApiKey(t.database.db, { userId: user.id, name: 'outage' })).key;
  });
  afterAll(async () => {
    await t?.close();
  });

  const models = (credential: string) =>
    t.app.inject({ method: 'GET', url: '/v1/models', headers: { authorization: `Bearer ${credential}` } });

  it('serves a known key from the stale cache and answers 503 for an unknown one', async () => {
    expect((await models(key)).statusCode).toBe(200);
    clock += CACHE_TTL_MS + 1000;

    // "Outage": the credential tables cannot be read.
    await sql`alter table api_keys rename to api_keys_away`.execute(t.database.db.kysely);
    try {
      expect((await models(key)).statusCode).toBe(200);
      const unknown = await models(`kt-${randomBytes(32).toString('hex')}`);
      expect(unknown.statusCode).toBe(503);
      expect(unknown.headers['retry-after']).toBe('5');
      expect(unknown.json().error.message).toMatch(/database is unavailable/);
    } finally {
      await sql`alter table api_keys_away rename to api_keys`.execute(t.database.db.kysely);
    }
    // Back to normal: the key is loaded afresh.
    clock += CACHE_TTL_MS + 1000;
    expect((await models(key)).statusCode).toBe(200);
  });
});
