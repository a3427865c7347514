import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/server/db/connection.ts';
import { insertUsageBatch, type UsageRow } from '../../src/server/usage/ingest.repository.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../helpers/db.ts';
import { DAY, HOUR, NOW, usageRow } from './helpers.ts';

type Row = Record<string, unknown>;

const SUMS = [
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'request_count',
  'cached_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'cost_nanos',
  'unpriced_count',
];

const canonical = (rows: Row[]) =>
  rows
    .map((row) =>
      JSON.stringify(
        Object.fromEntries(
          Object.entries(row)
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([k, v]) => [k, typeof v === 'string' ? v : Number(v)]),
        ),
      ),
    )
    .sort();

/** Each daily table equals the hourly rollups grouped by day, every sum included. */
async function expectDailyMatchesHourly(db: Db): Promise<void> {
  const sums = SUMS.map((column) => `sum(${column}) as ${column}`).join(', ');
  const day = `hour - (hour % ${DAY})`;
  for (const [table, keys] of [
    ['usage_rollups_daily_sources', 'user_id, user_name, source, api_key_id, api_key_name'],
    ['usage_rollups_daily_models', 'user_id, user_name, model'],
  ] as const) {
    const daily = await sql<Row>`select ${sql.raw(`day, ${keys}, ${SUMS.join(', ')}, last_used`)}
      from ${sql.table(table)}`.execute(db.kysely);
    const fromHourly =
      await sql<Row>`select ${sql.raw(`${day} as day, ${keys}, ${sums}, max(last_used) as last_used`)}
      from usage_rollups_hourly group by ${sql.raw(`${day}, ${keys}`)}`.execute(db.kysely);
    expect(canonical(daily.rows), table).toEqual(canonical(fromHourly.rows));
  }
}

async function versions(db: Db): Promise<Map<number, number>> {
  const rows = await db.kysely.selectFrom('usage_rollup_day_versions').selectAll().execute();
  return new Map(rows.map((row) => [Number(row.day), Number(row.version)]));
}

const TODAY = NOW - (NOW % DAY);
const YESTERDAY = TODAY - DAY;

/** A priced row with token details (the columns a cost view sums). */
function row(user: string, key: string | null, model: string, at: number, n: number): UsageRow {
  return usageRow({
    user_id: user,
    source: key ? 'apikey' : 'web',
    api_key_id: key,
    api_key_name: key ?? '',
    model,
    created_at: at,
    prompt_tokens: 10 * n,
    completion_tokens: n,
    total_tokens: 11 * n,
    cached_tokens: n,
    cache_write_tokens: null,
    reasoning_tokens: 2 * n,
    cost_nanos: n % 3 === 0 ? null : 1000 * n,
    price_source: n % 3 === 0 ? 'none' : 'catalog',
  });
}

describe.each(DIALECTS)('daily rollups and day versions kept from the hourly rollups on %s', (dialect) => {
  let database: TestDatabase;
  let db: Db;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    db = database.db;
  });
  afterAll(async () => database?.close());

  it('follow inserts, upserts, updates and deletes of hourly rows, and bump the days they touch', async () => {
    await insertUsageBatch(db, [
      row('alice', 'k1', 'gpt-4', YESTERDAY + 2 * HOUR, 1),
      row('alice', 'k1', 'gpt-4', YESTERDAY + 2 * HOUR + 5, 2),
      row('alice', null, 'llama', YESTERDAY + 5 * HOUR, 3),
      row('bob', 'k2', 'gpt-4', TODAY + HOUR, 4),
    ]);
    await expectDailyMatchesHourly(db);
    const first = await versions(db);
    expect([...first.keys()].sort()).toEqual([YESTERDAY, TODAY]);

    // One statement that both updates existing hourly rows and inserts new ones.
    await insertUsageBatch(db, [
      row('bob', 'k2', 'gpt-4', TODAY + HOUR + 10, 5),
      row('bob', 'k3', 'gpt-4', TODAY + 2 * HOUR, 6),
      row('carol', null, 'llama', TODAY + 3 * HOUR, 7),
    ]);
    await expectDailyMatchesHourly(db);
    const second = await versions(db);
    expect(second.get(YESTERDAY)).toBe(first.get(YESTERDAY));
    expect(second.get(TODAY)).toBeGreaterThan(first.get(TODAY) ?? 0);

    // A direct update (a reprice changes costs in place).
    await sql`update usage_rollups_hourly set cost_nanos = cost_nanos + 500, unpriced_count = 0
      where user_id = 'alice'`.execute(db.kysely);
    await expectDailyMatchesHourly(db);
    const third = await versions(db);
    expect(third.get(YESTERDAY)).toBeGreaterThan(second.get(YESTERDAY) ?? 0);
    expect(third.get(TODAY)).toBe(second.get(TODAY));

    // Deleting a user's hours of a day removes the daily rows left without requests.
    await sql`delete from usage_rollups_hourly where user_id = 'bob'`.execute(db.kysely);
    await expectDailyMatchesHourly(db);
    const bobDaily = await sql<Row>`select user_id from usage_rollups_daily_sources where user_id = 'bob'
      union all select user_id from usage_rollups_daily_models where user_id = 'bob'`.execute(db.kysely);
    expect(bobDaily.rows).toEqual([]);
    expect((await versions(db)).get(TODAY)).toBeGreaterThan(third.get(TODAY) ?? 0);
  });

  it('concurrent batches on the same rollup rows neither deadlock nor lose a count', async () => {
    const users = ['u1', 'u2', 'u3', 'u4'];
    const batches = Array.from({ length: 8 }, (_, b) => {
      const rows: UsageRow[] = [];
      for (let i = 0; i < 200; i += 1) {
        // Overlapping but different sets of keys, so no two batches meet them in the same order.
        const k = (i * (b + 1) + 7 * b) % (24 + 3 * b);
        const user = users[k % users.length] as string;
        rows.push(row(user, `key-${k % 10}`, `model-${k % 5}`, TODAY + (k % 6) * HOUR + b, 1 + (i % 4)));
      }
      return rows;
    });
    const inserted = await Promise.all(batches.map((batch) => insertUsageBatch(db, batch)));
    expect(inserted).toEqual(batches.map((batch) => batch.length));
    const counts = await sql<{ n: number | string }>`select sum(request_count) as n from usage_rollups_hourly
      where user_id in ('u1', 'u2', 'u3', 'u4')`.execute(db.kysely);
    expect(Number(counts.rows[0]?.n)).toBe(8 * 200);
    await expectDailyMatchesHourly(db);
  });
});
