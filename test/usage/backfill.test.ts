import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/server/db/connection.ts';
import { openRuntime } from '../../src/server/runtime.ts';
import { backfillUsageSource } from '../../src/server/usage/backfill.ts';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import type { SourcesResponse } from '../../src/shared/usage.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { DAY, getJson, HOUR, NOW, usageRow } from './helpers.ts';

type Row = Record<string, unknown>;
const sortRows = (rows: Row[]) =>
  rows.map((row) => JSON.stringify(row)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Every rollup table equals a recomputation from the raw rows. */
async function expectRollupsMatchRaw(db: Db): Promise<void> {
  const numbers = (rows: Row[]) =>
    rows.map((row) =>
      Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' ? v : Number(v)])),
    );
  const hourly = await sql<Row>`select hour, user_id, user_name, source, api_key_id, api_key_name, model,
      prompt_tokens, completion_tokens, total_tokens, request_count, last_used from usage_rollups_hourly`.execute(
    db.kysely,
  );
  const fromRaw =
    await sql<Row>`select created_at - (created_at % 3600000) as hour, user_id, user_name, source,
      coalesce(api_key_id, '') as api_key_id, api_key_name, model, sum(prompt_tokens) as prompt_tokens,
      sum(completion_tokens) as completion_tokens, sum(total_tokens) as total_tokens, count(*) as request_count,
      max(created_at) as last_used from usage_records
      group by created_at - (created_at % 3600000), user_id, user_name, source, coalesce(api_key_id, ''),
      api_key_name, model`.execute(db.kysely);
  expect(sortRows(numbers(hourly.rows))).toEqual(sortRows(numbers(fromRaw.rows)));
  const daily =
    await sql<Row>`select day, user_id, user_name, source, api_key_id, api_key_name, prompt_tokens,
      completion_tokens, total_tokens, request_count, last_used from usage_rollups_daily_sources`.execute(
      db.kysely,
    );
  const dailyFromRaw =
    await sql<Row>`select created_at - (created_at % 86400000) as day, user_id, user_name, source,
      coalesce(api_key_id, '') as api_key_id, api_key_name, sum(prompt_tokens) as prompt_tokens,
      sum(completion_tokens) as completion_tokens, sum(total_tokens) as total_tokens, count(*) as request_count,
      max(created_at) as last_used from usage_records
      group by created_at - (created_at % 86400000), user_id, user_name, source, coalesce(api_key_id, ''),
      api_key_name`.execute(db.kysely);
  expect(sortRows(numbers(daily.rows))).toEqual(sortRows(numbers(dailyFromRaw.rows)));
  const models = await sql<Row>`select day, user_id, user_name, model, prompt_tokens, completion_tokens,
      total_tokens, request_count, last_used from usage_rollups_daily_models`.execute(db.kysely);
  const modelsFromRaw =
    await sql<Row>`select created_at - (created_at % 86400000) as day, user_id, user_name, model,
      sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
      sum(total_tokens) as total_tokens, count(*) as request_count, max(created_at) as last_used
      from usage_records group by created_at - (created_at % 86400000), user_id, user_name, model`.execute(
      db.kysely,
    );
  expect(sortRows(numbers(models.rows))).toEqual(sortRows(numbers(modelsFromRaw.rows)));
}

describe.each(DIALECTS)('usage source backfill on %s (reference 8.6)', (dialect) => {
  let t: TestApp;
  let aliceKey: string;
  let adminKey: string;
  let aliceId: string;

  beforeAll(async () => {
    t = await startTestApp({ dialect, now: () => NOW });
    const db = t.database.db;
    const alice = await createUser(db, { name: 'Alice' });
    const root = await createUser(db, { name: 'Root', role: 'admin' });
    aliceId = alice.id;
    aliceKey = (await createApiKey(db, { userId: alice.id })).key;
    adminKey = (await createApiKey(db, { userId: root.id })).key;
    await insertUsageBatch(db, [
      // Imported rows without a source, sharing hours with rows that have one.
      usageRow({ user_id: alice.id, source: '', total_tokens: 40, created_at: NOW - HOUR }),
      usageRow({ user_id: alice.id, source: '', total_tokens: 2, created_at: NOW - 3 * DAY }),
      usageRow({ user_id: alice.id, source: 'web', total_tokens: 5, created_at: NOW - HOUR }),
      usageRow({
        user_id: 'legacy-api-key',
        user_name: 'API Key User',
        source: '',
        total_tokens: 9,
        created_at: NOW - HOUR,
      }),
      usageRow({
        user_id: alice.id,
        source: 'apikey',
        api_key_id: 'k',
        api_key_name: 'k',
        total_tokens: 3,
        created_at: NOW - 2 * HOUR,
      }),
    ]);
  });
  afterAll(async () => t?.close());

  it('the daily rollups kept by triggers agree with the raw rows after ingest', async () => {
    await expectRollupsMatchRaw(t.database.db);
  });

  it('turns empty sources into web, and into legacy for the legacy user; rollups follow', async () => {
    const before = await getJson<SourcesResponse>(t.app, '/api/auth/admin/usage/sources', adminKey);
    expect(before.body.totals.by_source['']).toEqual({
      tokens: 51,
      requests: 3,
      cost: 0,
      unpriced_requests: 3,
    });

    expect(await backfillUsageSource(t.database.db)).toEqual({ rows: 3, hours: 2 });
    const sources = await t.database.db.kysely
      .selectFrom('usage_records')
      .select(['user_id', 'source', 'total_tokens'])
      .orderBy('total_tokens')
      .execute();
    expect(sources.map((row) => [row.source, Number(row.total_tokens)])).toEqual([
      ['web', 2],
      ['apikey', 3],
      ['web', 5],
      ['legacy', 9],
      ['web', 40],
    ]);
    await expectRollupsMatchRaw(t.database.db);

    const after = await getJson<SourcesResponse>(t.app, '/api/auth/admin/usage/sources', adminKey);
    expect(after.body.totals.by_source).toEqual({
      web: { tokens: 47, requests: 3, cost: 0, unpriced_requests: 3 },
      legacy: { tokens: 9, requests: 1, cost: 0, unpriced_requests: 1 },
      apikey: { tokens: 3, requests: 1, cost: 0, unpriced_requests: 1 },
    });
    const own = await getJson<SourcesResponse>(t.app, '/api/auth/usage/sources?period=day', aliceKey);
    expect(own.body.totals.by_source.web).toEqual({ tokens: 45, requests: 2, cost: 0, unpriced_requests: 2 });
    expect(own.body.totals.grand_total.tokens).toBe(48);
    expect(aliceId).toBeTruthy();
  });

  it('is idempotent: a second run changes nothing', async () => {
    const before = await getJson(t.app, '/api/auth/admin/usage/sources?period=all', adminKey);
    expect(await backfillUsageSource(t.database.db)).toEqual({ rows: 0, hours: 0 });
    await expectRollupsMatchRaw(t.database.db);
    expect((await getJson(t.app, '/api/auth/admin/usage/sources?period=all', adminKey)).body).toEqual(
      before.body,
    );
  });
});

describe.each(DIALECTS)('start-up backfill on %s', (dialect) => {
  it('openRuntime backfills rows that arrived without a source', async () => {
    const database = await createTestDatabase(dialect);
    try {
      await insertUsageBatch(database.db, [
        usageRow({ user_id: 'someone', source: '', created_at: Date.now() }),
      ]);
      const runtime = await openRuntime(
        {
          dataDir: database.dataDir,
          databaseUrl: database.url,
          hmacSecret: TEST_HMAC_SECRET,
          logLevel: 'silent',
        },
        { logLevel: 'silent' },
      );
      try {
        const rows = await runtime.db.kysely.selectFrom('usage_rollups_hourly').select('source').execute();
        expect(rows.map((row) => row.source)).toEqual(['web']);
      } finally {
        await runtime.db.close();
      }
    } finally {
      await database.close();
    }
  });
});
