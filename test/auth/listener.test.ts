import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret, randomHex } from '../../src/server/auth/hash.ts';
import { channelForSchema } from '../../src/server/auth/invalidation.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { HAS_POSTGRES_SERVER } from '../helpers/postgres.ts';

/**
 * The LISTEN connection (PostgreSQL only; SQLite is single-instance): two app instances in this
 * process share one database; the listener reconnects after its connection is killed and keeps
 * delivering invalidations. The credential cache keeps entries 10 s, so only a working listener
 * makes instance B refuse within 1 s.
 */
// NOTIFY between connections needs a PostgreSQL server (HAS_POSTGRES_SERVER).
describe.skipIf(!HAS_POSTGRES_SERVER)(
  'auth invalidation listener on postgres (needs a PostgreSQL server)',
  () => {
    let database: TestDatabase;
    let a: TestApp;
    let b: TestApp;
    let channel = '';

    beforeAll(async () => {
      database = await createTestDatabase('postgres');
      a = await startTestApp({ dialect: 'postgres', database });
      b = await startTestApp({ dialect: 'postgres', database });
      const schema = await database.db.pool?.query<{ schema: string }>('select current_schema() as schema');
      channel = channelForSchema(schema?.rows[0]?.schema ?? '');
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await database?.close();
    });

    const listeners = async (): Promise<number> => {
      const result = await database.db.pool?.query<{ n: number }>(
        'select count(*)::int as n from pg_stat_activity where application_name = $1',
        [channel],
      );
      return result?.rows[0]?.n ?? 0;
    };
    const waitFor = async (check: () => Promise<boolean>, ms: number): Promise<boolean> => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (await check()) return true;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return false;
    };
    const me = (t: TestApp, key: string) =>
      t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${key}` } });

    it('each instance holds one named LISTEN connection', async () => {
      expect(await listeners()).toBe(2);
    });

    it('after its connection is killed the listener reconnects and B again refuses a key revoked on A within 1 s', async () => {
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      try {
        await admin.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1',
          [channel],
        );
      } finally {
        await admin.end();
      }
      expect(await waitFor(async () => (await listeners()) === 2, 5000)).toBe(true);

      const user = await createUser(database.db);
      const key = await createApiKey(database.db, { userId: user.id });
      expect((await me(b, key.key)).statusCode).toBe(200);
      // an admin session, to revoke through A's admin route
      const owner = await createUser(database.db, { role: 'admin' });
      const token = randomHex(32);
      const now = Date.now();
      await database.db.kysely
        .insertInto('sessions')
        .values({
          id: hashSecret(TEST_HMAC_SECRET, token),
          user_id: owner.id,
          expires_at: now + 3_600_000,
          rotated_at: now,
          created_at: now,
        })
        .execute();
      const revoke = await a.app.inject({
        method: 'DELETE',
        url: `/api/auth/admin/api-keys/${key.id}`,
        cookies: { session: token },
      });
      expect(revoke.statusCode).toBe(200);
      expect((await me(a, key.key)).statusCode).toBe(401);
      expect(await waitFor(async () => (await me(b, key.key)).statusCode === 401, 1000)).toBe(true);
    });
  },
);
