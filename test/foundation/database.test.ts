import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/server/db/connection.ts';
import { bucketLabel, bucketLabelOf, hourStart } from '../../src/server/db/dialect.ts';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../helpers/db.ts';
import { createTestPostgres } from '../helpers/postgres.ts';

const TABLES = [
  'api_key_limits',
  'api_key_rejections',
  'api_keys',
  'invites',
  'limit_leases',
  'limit_policies',
  'prices',
  'quota_rules',
  'sessions',
  'usage_records',
  'usage_rollup_day_versions',
  'usage_rollups_daily_models',
  'usage_rollups_daily_sources',
  'usage_rollups_hourly',
  'user_identities',
  'user_limits',
  'user_permissions',
  'users',
];

async function listTables(database: TestDatabase): Promise<string[]> {
  // keytally's PostgreSQL introspection reads only the current schema (current-schema-dialect.ts);
  // the filter keeps this helper honest should that ever change.
  const schema =
    database.dialect === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(database.db.kysely)).rows[0]
          ?.schema
      : undefined;
  const tables = await database.db.kysely.introspection.getTables();
  return tables
    .filter((table) => schema === undefined || table.schema === schema)
    .map((table) => table.name)
    .filter((name) => !name.startsWith('kysely_'));
}

describe.each(DIALECTS)('database on %s', (dialect) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.close();
    database = undefined;
  });

  it('migrates an empty database to every table, and a re-run applies nothing', async () => {
    database = await createTestDatabase(dialect, { migrate: false });
    expect(await listTables(database)).toEqual([]);
    const first = await migrateToLatest(database.db);
    expect(first.applied).toEqual([
      '20261128T0001-initial',
      '20261128T0030-usage-daily-rollups',
      '20261128T0031-usage-day-versions',
      '20261128T0032-usage-raw-indexes',
      '20261201T0300-usage-cost',
      '20261201T0400-limits',
      '20261201T0500-access',
      '20261201T0600-user-identities',
      '20261201T0700-pg-statement-rollup-triggers',
    ]);
    expect((await listTables(database)).sort()).toEqual(TABLES);
    const second = await migrateToLatest(database.db);
    expect(second.applied).toEqual([]);
  });

  it('indexes the raw usage table for the export and the backfill only', async () => {
    database = await createTestDatabase(dialect);
    const names =
      dialect === 'postgres'
        ? (
            await sql<{ name: string }>`select indexname as name from pg_indexes
              where tablename = 'usage_records' and schemaname = current_schema()`.execute(database.db.kysely)
          ).rows.map((row) => row.name)
        : (
            await sql<{ name: string }>`select name from sqlite_master
              where type = 'index' and tbl_name = 'usage_records' and sql is not null`.execute(
              database.db.kysely,
            )
          ).rows.map((row) => row.name);
    expect(names.filter((name) => name.startsWith('idx_')).sort()).toEqual([
      'idx_usage_apikey',
      'idx_usage_time',
      'idx_usage_unsourced',
      'idx_usage_user_time',
    ]);
    // The backfill's lookup uses the partial index.
    const explain =
      dialect === 'postgres'
        ? sql`explain select id from usage_records where source = '' limit 1`
        : sql`explain query plan select id from usage_records where source = '' limit 1`;
    const rows = await database.db.kysely.transaction().execute(async (trx) => {
      // An empty table is cheapest to scan; the question is whether the index can serve the query.
      if (dialect === 'postgres') await sql`set local enable_seqscan = off`.execute(trx);
      return (await explain.execute(trx)).rows;
    });
    const plan = JSON.stringify(rows);
    expect(plan).toContain('idx_usage_unsourced');
  });

  it('has the columns later issues rely on', async () => {
    database = await createTestDatabase(dialect);
    const schema =
      dialect === 'postgres'
        ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(database.db.kysely))
            .rows[0]?.schema
        : undefined;
    const tables = (await database.db.kysely.introspection.getTables()).filter(
      (table) => schema === undefined || table.schema === schema,
    );
    const columns = (name: string) => tables.find((t) => t.name === name)?.columns.map((c) => c.name) ?? [];
    expect(columns('api_keys')).toContain('revoked_at');
    expect(columns('usage_records')).toEqual(
      expect.arrayContaining(['usage_origin', 'aborted', 'stream', 'upstream', 'api_key_name', 'user_name']),
    );
    // Cost (issue #12): token details, the row's cost and where its price came from.
    expect(columns('usage_records')).toEqual(
      expect.arrayContaining([
        'cached_tokens',
        'cache_write_tokens',
        'reasoning_tokens',
        'cost_nanos',
        'price_source',
      ]),
    );
    for (const table of [
      'usage_rollups_hourly',
      'usage_rollups_daily_sources',
      'usage_rollups_daily_models',
    ]) {
      expect(columns(table)).toEqual(
        expect.arrayContaining(['cost_nanos', 'unpriced_count', 'cached_tokens']),
      );
    }
    expect(columns('usage_rollups_hourly')).toEqual(
      expect.arrayContaining([
        'hour',
        'user_id',
        'source',
        'api_key_id',
        'model',
        'request_count',
        'last_used',
      ]),
    );
  });

  it.each([
    // 23:59:59.999 UTC stays on its day; one millisecond later is the next day and month.
    [Date.UTC(2026, 0, 31, 23, 59, 59, 999), '2026-01-31 23:00', '2026-01-31', '2026-01'],
    [Date.UTC(2026, 1, 1, 0, 0, 0, 0), '2026-02-01 00:00', '2026-02-01', '2026-02'],
    [Date.UTC(2026, 4, 19, 14, 30, 0, 0), '2026-05-19 14:00', '2026-05-19', '2026-05'],
  ])('labels %d as hour/day/month buckets in UTC', async (epochMs, hour, day, month) => {
    database = await createTestDatabase(dialect);
    const row = await sql<{ hour: string; day: string; month: string }>`select ${bucketLabel(
      dialect,
      't.at',
      'hour',
    )} as hour, ${bucketLabel(dialect, 't.at', 'day')} as day, ${bucketLabel(dialect, 't.at', 'month')} as month
      from (select cast(${epochMs} as bigint) as at) t`.execute(database.db.kysely);
    expect(row.rows[0]).toEqual({ hour, day, month });
    expect([
      bucketLabelOf(epochMs, 'hour'),
      bucketLabelOf(epochMs, 'day'),
      bucketLabelOf(epochMs, 'month'),
    ]).toEqual([hour, day, month]);
  });
});

describe('hourStart', () => {
  it('floors to the UTC hour', () => {
    expect(hourStart(Date.UTC(2026, 4, 19, 14, 59, 59, 999))).toBe(Date.UTC(2026, 4, 19, 14));
    expect(hourStart(Date.UTC(2026, 4, 19, 14))).toBe(Date.UTC(2026, 4, 19, 14));
  });
});

describe('the PostgreSQL pool', () => {
  it('keeps two connections open through an idle spell (the recorder commits on them) and closes the rest', async () => {
    const server = await createTestPostgres();
    const db = await openDatabase(server.url, { idleTimeoutMs: 100 });
    try {
      let opened = 0;
      db.pool?.on('connect', () => {
        opened += 1;
      });
      // Five at once: the one connection opened at start-up, and four more.
      await Promise.all(Array.from({ length: 5 }, () => sql`select pg_sleep(0.05)`.execute(db.kysely)));
      expect(opened).toBe(4);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(db.pool?.totalCount).toBe(2);
      expect(db.pool?.idleCount).toBe(2);
    } finally {
      await db.close();
      await server.cleanup();
    }
  });
});
