import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PriceBook } from '../../src/server/cost/price-book.ts';
import { repriceUsage } from '../../src/server/cost/reprice.ts';
import type { Db } from '../../src/server/db/connection.ts';
import { insertUsageBatch, type UsageRow } from '../../src/server/usage/ingest.repository.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../helpers/db.ts';
import { DAY, HOUR, NOW, usageRow } from '../usage/helpers.ts';

type Row = Record<string, unknown>;

/** Per rollup table, cost and unpriced sums grouped by its key, next to the same sums from raw rows. */
async function rollupCostsAndRaw(db: Db, userId: string): Promise<{ rollups: string[]; raw: string[] }> {
  const list = (rows: Row[]) => rows.map((row) => Object.values(row).map(String).join('|')).sort();
  const hourExpr = sql.raw('created_at - (created_at % 3600000)');
  const dayExpr = sql.raw('created_at - (created_at % 86400000)');
  const rawSums = sql.raw(
    "coalesce(sum(cost_nanos), 0) as cost, sum(case when price_source = 'none' then 1 else 0 end) as unpriced, count(*) as n",
  );
  const rollups = [
    ...list(
      (
        await sql<Row>`select 'h' as t, hour as at, model, source, api_key_id, cost_nanos, unpriced_count, request_count
          from usage_rollups_hourly where user_id = ${userId} and request_count > 0`.execute(db.kysely)
      ).rows,
    ),
    ...list(
      (
        await sql<Row>`select 'm' as t, day as at, model, cost_nanos, unpriced_count, request_count
          from usage_rollups_daily_models where user_id = ${userId}`.execute(db.kysely)
      ).rows,
    ),
    ...list(
      (
        await sql<Row>`select 's' as t, day as at, source, api_key_id, cost_nanos, unpriced_count, request_count
          from usage_rollups_daily_sources where user_id = ${userId}`.execute(db.kysely)
      ).rows,
    ),
  ];
  const raw = [
    ...list(
      (
        await sql<Row>`select 'h' as t, ${hourExpr} as at, model, source, coalesce(api_key_id, '') as k, ${rawSums}
          from usage_records where user_id = ${userId} group by ${hourExpr}, model, source, coalesce(api_key_id, '')`.execute(
          db.kysely,
        )
      ).rows,
    ),
    ...list(
      (
        await sql<Row>`select 'm' as t, ${dayExpr} as at, model, ${rawSums}
          from usage_records where user_id = ${userId} group by ${dayExpr}, model`.execute(db.kysely)
      ).rows,
    ),
    ...list(
      (
        await sql<Row>`select 's' as t, ${dayExpr} as at, source, coalesce(api_key_id, '') as k, ${rawSums}
          from usage_records where user_id = ${userId} group by ${dayExpr}, source, coalesce(api_key_id, '')`.execute(
          db.kysely,
        )
      ).rows,
    ),
  ];
  return { rollups: rollups.sort(), raw: raw.sort() };
}

describe.each(DIALECTS)('cost in rollups and reprice on %s', (dialect) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('property: rollup cost sums equal the raw rows sums, for random rows, prices and batches', async () => {
    const rowArb = fc.record({
      hourOffset: fc.integer({ min: 0, max: 72 }),
      model: fc.constantFrom('a', 'b', 'c'),
      source: fc.constantFrom('apikey', 'web'),
      prompt: fc.integer({ min: 0, max: 100_000 }),
      completion: fc.integer({ min: 0, max: 100_000 }),
      cost: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: null }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(rowArb, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 20 }),
        async (specs, batch) => {
          const userId = randomUUID();
          const rows: UsageRow[] = specs.map((spec) =>
            usageRow({
              user_id: userId,
              model: spec.model,
              source: spec.source,
              api_key_id: spec.source === 'apikey' ? 'k1' : null,
              prompt_tokens: spec.prompt,
              completion_tokens: spec.completion,
              total_tokens: spec.prompt + spec.completion,
              created_at: NOW - spec.hourOffset * HOUR,
              cost_nanos: spec.cost,
              price_source: spec.cost === null ? 'none' : 'catalog',
            }),
          );
          for (let i = 0; i < rows.length; i += batch)
            await insertUsageBatch(database.db, rows.slice(i, i + batch));
          const { rollups, raw } = await rollupCostsAndRaw(database.db, userId);
          expect(rollups).toEqual(raw);
        },
      ),
      { numRuns: 15 },
    );
  });

  it('reprice changes exactly the rows and rollups of the range, and a second run changes nothing', async () => {
    const userId = randomUUID();
    const from = NOW - 2 * DAY;
    const to = NOW - DAY;
    const rows = [
      usageRow({ user_id: userId, model: 'local', created_at: from - 1 }),
      usageRow({ user_id: userId, model: 'local', created_at: from }),
      usageRow({ user_id: userId, model: 'local', created_at: from + HOUR }),
      usageRow({ user_id: userId, model: 'local', created_at: to - 1 }),
      usageRow({ user_id: userId, model: 'local', created_at: to }),
      usageRow({ user_id: userId, model: 'other', created_at: from + HOUR }),
    ];
    await insertUsageBatch(database.db, rows);
    const book = new PriceBook([
      {
        id: 'p1',
        model: 'local',
        input: 2_000_000,
        output: 4_000_000,
        cachedInput: null,
        cacheWrite: null,
        effectiveFrom: 0,
        origin: 'api',
      },
    ]);
    const progress: number[] = [];
    const first = await repriceUsage(database.db, book, {
      from,
      to,
      model: 'local',
      providers: new Map(),
      batchRows: 2,
      onProgress: (done) => progress.push(done),
    });
    // 10 prompt × 2,000,000 + 5 completion × 4,000,000 pico-USD = 40,000 nano-USD per row.
    expect(first).toEqual({ rows: 3, changedRows: 3, costDeltaNanos: 120_000 });
    expect(progress).toEqual([2, 3]);
    const stored = await database.db.kysely
      .selectFrom('usage_records')
      .select(['created_at', 'model', 'cost_nanos', 'price_source'])
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .orderBy('model')
      .execute();
    expect(
      stored.map((row) => [
        Number(row.created_at) - from,
        row.model,
        row.cost_nanos === null ? null : Number(row.cost_nanos),
        row.price_source,
      ]),
    ).toEqual([
      [-1, 'local', null, 'none'],
      [0, 'local', 40_000, 'admin'],
      [HOUR, 'local', 40_000, 'admin'],
      [HOUR, 'other', null, 'none'],
      [DAY - 1, 'local', 40_000, 'admin'],
      [DAY, 'local', null, 'none'],
    ]);
    const { rollups, raw } = await rollupCostsAndRaw(database.db, userId);
    expect(rollups).toEqual(raw);

    const second = await repriceUsage(database.db, book, { from, to, model: 'local', providers: new Map() });
    expect(second).toEqual({ rows: 3, changedRows: 0, costDeltaNanos: 0 });
    expect(await rollupCostsAndRaw(database.db, userId)).toEqual({ rollups, raw });
  });
});
