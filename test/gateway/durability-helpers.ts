import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { Db } from '../../src/server/db/connection.ts';
import { TEST_HMAC_SECRET } from '../helpers/app.ts';
import type { TestDatabase } from '../helpers/db.ts';
import type { FakeUpstream } from '../helpers/fake-upstream.ts';

export const LEGACY = 'legacy-load-secret';
// x-api-key with a legacy key needs no database lookup, so the load keeps flowing during an outage.
export const HEADERS = { 'x-api-key': LEGACY };

export function env(
  database: TestDatabase,
  upstream: FakeUpstream,
  url = database.url,
): Record<string, string> {
  return {
    KEYTALLY_DATA_DIR: database.dataDir,
    KEYTALLY_DATABASE_URL: url,
    KEYTALLY_HMAC_SECRET: TEST_HMAC_SECRET,
    KEYTALLY_UPSTREAM_URL: upstream.baseUrl,
    KEYTALLY_API_KEYS: LEGACY,
    KEYTALLY_USAGE_FLUSH_MS: '200',
    KEYTALLY_LOG_LEVEL: 'warn',
  };
}

export async function rowsByModel(db: Db): Promise<Map<string, number>> {
  const rows = await db.kysely
    .selectFrom('usage_records')
    .select(['model', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('model')
    .execute();
  return new Map(rows.map((row) => [row.model, Number(row.n)]));
}

export async function expectRollupsMatchRaw(db: Db): Promise<void> {
  const raw = await db.kysely
    .selectFrom('usage_records')
    .select((eb) => [eb.fn.sum<number>('total_tokens').as('tokens'), eb.fn.countAll<number>().as('n')])
    .executeTakeFirstOrThrow();
  const rolled = await db.kysely
    .selectFrom('usage_rollups_hourly')
    .select((eb) => [
      eb.fn.sum<number>('total_tokens').as('tokens'),
      eb.fn.sum<number>('request_count').as('n'),
    ])
    .executeTakeFirstOrThrow();
  expect(Number(rolled.n)).toBe(Number(raw.n));
  expect(Number(rolled.tokens)).toBe(Number(raw.tokens));
}

/** Polls (bounded) until every model in `expected` has a row; the recorder flushes on its own clock. */
export async function waitForRows(
  db: Db,
  expected: string[],
  timeoutMs = 20_000,
): Promise<Map<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await rowsByModel(db);
    if (expected.every((model) => rows.has(model)) || Date.now() > deadline) return rows;
    await sleep(100);
  }
}
