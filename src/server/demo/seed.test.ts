import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DIALECTS, makeTempDir, type TestDatabase } from '../../../test/helpers/db.ts';
import { runKeytally } from '../../../test/helpers/process.ts';
import { LEGACY_USER_ID } from '../auth/context.ts';
import { verifyPassword } from '../auth/password.ts';
import { DEMO_DAYS, DEMO_PRICES, DEMO_UPSTREAM, DemoSeedRefused, seedDemo } from './seed.ts';

const DAY = 86_400_000;

describe.each(DIALECTS)('seedDemo on %s', (dialect) => {
  let database: TestDatabase;
  const now = Date.UTC(2026, 10, 28, 15, 30);
  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('fills an empty database with 30 days of labelled users, keys and web/apikey/legacy usage', async () => {
    const result = await seedDemo(database.db, 'secret', { now, adminPassword: 'a demo password 123' });
    const { kysely } = database.db;
    const users = await kysely.selectFrom('users').selectAll().execute();
    expect(users).toHaveLength(4);
    expect(users.filter((u) => u.role === 'admin').map((u) => u.email)).toEqual(['admin@demo.keytally']);
    expect(users.filter((u) => u.role === 'user').every((u) => u.name.endsWith('(demo)'))).toBe(true);
    const admin = users.find((u) => u.role === 'admin');
    expect(await verifyPassword('a demo password 123', admin?.password_hash ?? null)).toBe(true);
    expect(result.generatedPassword).toBeNull();

    const keys = await kysely.selectFrom('api_keys').selectAll().execute();
    expect(keys).toHaveLength(12);
    expect(keys.filter((k) => k.revoked_at !== null)).toHaveLength(1);
    expect(keys.every((k) => k.key_prefix.startsWith('kt-') && k.last_used !== null)).toBe(true);

    const sources = await kysely
      .selectFrom('usage_records')
      .select(['source'])
      .select((eb) => [
        eb.fn.countAll<number>().as('n'),
        eb.fn.min('created_at').as('first'),
        eb.fn.max('created_at').as('last'),
      ])
      .groupBy('source')
      .orderBy('source')
      .execute();
    expect(sources.map((s) => s.source)).toEqual(['apikey', 'legacy', 'web']);
    for (const s of sources) {
      expect(Number(s.first)).toBeGreaterThanOrEqual(now - DEMO_DAYS * DAY);
      expect(Number(s.last)).toBeLessThanOrEqual(now);
      expect(Number(s.last) - Number(s.first)).toBeGreaterThan((DEMO_DAYS - 2) * DAY);
    }
    const total = sources.reduce((sum, s) => sum + Number(s.n), 0);
    expect(total).toBe(result.usageRows);
    const labelled = await kysely
      .selectFrom('usage_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('upstream', '=', DEMO_UPSTREAM)
      .where('model', 'like', 'demo-%')
      .executeTakeFirst();
    expect(Number(labelled?.n)).toBe(total);
    const legacy = await kysely
      .selectFrom('usage_records')
      .select('user_id')
      .where('source', '=', 'legacy')
      .groupBy('user_id')
      .execute();
    expect(legacy.map((r) => r.user_id)).toEqual([LEGACY_USER_ID]);
    // The dashboard reads rollups: they hold every seeded token.
    const rollup = await kysely
      .selectFrom('usage_rollups_hourly')
      .select((eb) => eb.fn.sum<number>('total_tokens').as('t'))
      .executeTakeFirst();
    expect(Number(rollup?.t)).toBe(result.totalTokens);

    // Every demo model has an admin price, so every seeded row has a cost (and the rollups sum it).
    const prices = await kysely.selectFrom('prices').select('model').execute();
    expect(prices.map((p) => p.model).sort()).toEqual(DEMO_PRICES.map((p) => p.model).sort());
    const unpriced = await kysely
      .selectFrom('usage_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('price_source', '<>', 'admin')
      .executeTakeFirst();
    expect(Number(unpriced?.n)).toBe(0);
    const costs = await kysely
      .selectFrom('usage_records')
      .select((eb) => eb.fn.sum<number>('cost_nanos').as('c'))
      .executeTakeFirst();
    const rolledCost = await kysely
      .selectFrom('usage_rollups_daily_models')
      .select((eb) => eb.fn.sum<number>('cost_nanos').as('c'))
      .executeTakeFirst();
    expect(Number(costs?.c)).toBeGreaterThan(0);
    expect(Number(rolledCost?.c)).toBe(Number(costs?.c));
  });

  it('refuses a database that already has users or usage', async () => {
    await expect(seedDemo(database.db, 'secret', { now })).rejects.toBeInstanceOf(DemoSeedRefused);
  });
});

describe('keytally seed-demo (process)', () => {
  const dataDir = makeTempDir();
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('seeds, prints how to sign in, and refuses a second run with exit code 2', async () => {
    const first = runKeytally(['seed-demo', '--data-dir', dataDir], {});
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/seeded \d+ demo requests/);
    expect(first.output()).toContain('sign in as admin@demo.keytally');
    expect(first.output()).toMatch(/password \(shown once\): demo-[0-9a-f]{18}/);
    const second = runKeytally(['seed-demo', '--data-dir', dataDir], {});
    expect(await second.exited).toBe(2);
    expect(second.output()).toContain('seed-demo only fills an empty database');
  });
});
