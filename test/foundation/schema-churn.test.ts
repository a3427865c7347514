import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createTestPostgres, HAS_POSTGRES_SERVER } from '../helpers/postgres.ts';

/** Creates and drops schemas (each with a serial-keyed table) until stopped; returns how many. */
async function churnSchemas(stop: { done: boolean }): Promise<number> {
  let dropped = 0;
  while (!stop.done) {
    const other = await createTestPostgres();
    const client = new pg.Client({ connectionString: other.url });
    await client.connect();
    await client.query('create table churn (id serial primary key, label text)');
    await client.end();
    await other.cleanup();
    dropped += 1;
  }
  return dropped;
}

// Parallel test files each own a schema on the same server and drop it when done. Kysely's own
// introspector (its migrator's "does my table exist?") read every schema by name and failed with
// "schema … does not exist" when one vanished mid-query: CI lost two test files to it.
// Sessions dropping schemas while others introspect need statements that run at once: a PostgreSQL
// server (HAS_POSTGRES_SERVER); the embedded PGlite runs one statement at a time.
describe.skipIf(!HAS_POSTGRES_SERVER)(
  'PostgreSQL migrations while other sessions drop their schemas (needs a PostgreSQL server)',
  () => {
    let database: TestDatabase;
    beforeAll(async () => {
      database = await createTestDatabase('postgres');
    });
    afterAll(async () => {
      await database?.close();
    });

    it('introspects only the current schema', async () => {
      const other = await createTestPostgres();
      try {
        const client = new pg.Client({ connectionString: other.url });
        await client.connect();
        await client.query('create table not_ours (id serial primary key)');
        await client.end();
        const tables = await database.db.kysely.introspection.getTables({ withInternalKyselyTables: true });
        const names = tables.map((table) => table.name);
        expect(names).toContain('usage_records');
        expect(names).toContain('kysely_migration');
        expect(names).not.toContain('not_ours');
        expect(new Set(tables.map((table) => table.schema)).size).toBe(1);
        const users = tables.find((table) => table.name === 'users');
        expect(users?.columns.find((column) => column.name === 'id')?.isNullable).toBe(false);
      } finally {
        await other.cleanup();
      }
    });

    it('introspection and fresh migrations never fail on a schema dropped meanwhile', async () => {
      const stop = { done: false };
      const churners = [churnSchemas(stop), churnSchemas(stop)];
      const errors: string[] = [];
      try {
        for (let round = 0; round < 150; round += 1) {
          await database.db.kysely.introspection
            .getTables({ withInternalKyselyTables: true })
            .catch((error: Error) => errors.push(error.message));
        }
        for (let round = 0; round < 5; round += 1) {
          const fresh = await createTestDatabase('postgres', { migrate: false });
          await migrateToLatest(fresh.db).catch((error: Error) => errors.push(error.message));
          await fresh.close();
        }
      } finally {
        stop.done = true;
      }
      const dropped = (await Promise.all(churners)).reduce((sum, count) => sum + count, 0);
      expect(dropped).toBeGreaterThan(0);
      expect(errors).toEqual([]);
    }, 120_000);
  },
);
