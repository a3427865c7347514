import { randomUUID } from 'node:crypto';
import { type Migration, Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import * as initial from '../../src/server/db/migrations/20261128T0001-initial.ts';
import * as dailyRollups from '../../src/server/db/migrations/20261128T0030-usage-daily-rollups.ts';
import * as dayVersions from '../../src/server/db/migrations/20261128T0031-usage-day-versions.ts';
import * as rawIndexes from '../../src/server/db/migrations/20261128T0032-usage-raw-indexes.ts';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../helpers/db.ts';
import { HOUR, NOW, usageRow } from '../usage/helpers.ts';

/** A database as it was before the cost migration, with usage in it, then upgraded. */
describe.each(DIALECTS)('upgrading to the cost migration on %s', (dialect) => {
  let database: TestDatabase;
  const hour = NOW - (NOW % HOUR);

  beforeAll(async () => {
    database = await createTestDatabase(dialect, { migrate: false });
    const before: Record<string, Migration> = {
      '20261128T0001-initial': initial,
      '20261128T0030-usage-daily-rollups': dailyRollups,
      '20261128T0031-usage-day-versions': dayVersions,
      '20261128T0032-usage-raw-indexes': rawIndexes,
    };
    const schema =
      dialect === 'postgres'
        ? (await sql<{ s: string }>`select current_schema() as s`.execute(database.db.kysely)).rows[0]?.s
        : undefined;
    const migrator = new Migrator({
      db: database.db.kysely,
      provider: { getMigrations: async () => before },
      migrationTableSchema: schema,
    });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    // Two requests recorded by the old code: raw rows and their hourly rollup (the daily ones by trigger).
    for (const id of [randomUUID(), randomUUID()]) {
      await sql`insert into usage_records (id, user_id, user_name, source, api_key_id, api_key_name, model,
        endpoint, prompt_tokens, completion_tokens, total_tokens, duration_ms, created_at, usage_origin,
        aborted, stream, upstream)
        values (${id}, 'u1', 'Ann', 'web', null, '', 'old-model', '/v1/chat/completions', 10, 5, 15, 1,
        ${hour + 1000}, 'provider', 0, 0, 'default')`.execute(database.db.kysely);
    }
    await sql`insert into usage_rollups_hourly (hour, user_id, user_name, source, api_key_id, api_key_name,
      model, prompt_tokens, completion_tokens, total_tokens, request_count, last_used)
      values (${hour}, 'u1', 'Ann', 'web', '', '', 'old-model', 20, 10, 30, 2, ${hour + 1000})`.execute(
      database.db.kysely,
    );
    expect((await migrateToLatest(database.db)).applied).toContain('20261201T0300-usage-cost');
  });
  afterAll(async () => {
    await database?.close();
  });

  it('marks what was recorded before as unpriced, in the rows and every rollup', async () => {
    const raw = await database.db.kysely
      .selectFrom('usage_records')
      .select(['price_source', 'cost_nanos'])
      .execute();
    expect(raw).toEqual([
      { price_source: 'none', cost_nanos: null },
      { price_source: 'none', cost_nanos: null },
    ]);
    for (const table of [
      'usage_rollups_hourly',
      'usage_rollups_daily_sources',
      'usage_rollups_daily_models',
    ] as const) {
      const row = await database.db.kysely
        .selectFrom(table)
        .select(['request_count', 'unpriced_count', 'cost_nanos'])
        .executeTakeFirstOrThrow();
      expect([Number(row.request_count), Number(row.unpriced_count), Number(row.cost_nanos)]).toEqual([
        2, 2, 0,
      ]);
    }
  });

  it('carries the cost of new rows into the daily rollups through the replaced triggers', async () => {
    await insertUsageBatch(database.db, [
      usageRow({
        user_id: 'u1',
        user_name: 'Ann',
        model: 'old-model',
        created_at: hour + 2000,
        cost_nanos: 123,
        price_source: 'admin',
      }),
    ]);
    for (const table of ['usage_rollups_daily_sources', 'usage_rollups_daily_models'] as const) {
      const row = await database.db.kysely
        .selectFrom(table)
        .select(['request_count', 'unpriced_count', 'cost_nanos'])
        .executeTakeFirstOrThrow();
      expect([Number(row.request_count), Number(row.unpriced_count), Number(row.cost_nanos)]).toEqual([
        3, 2, 123,
      ]);
    }
  });
});
