import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BucketUnit } from '../../src/server/db/dialect.ts';
import { insertUsageBatch, type UsageRow } from '../../src/server/usage/ingest.repository.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { bruteKeyUsage, bruteSources, bruteUsage, bruteWindow, inWindow } from './brute-force.ts';
import { DAY, getJson, HOUR, NOW } from './helpers.ts';

/**
 * Every endpoint's answer equals the brute force of brute-force.ts over the raw rows, for seeded
 * random data sets (reproducible: the seed is in the test name): thousands of rows over 60 days,
 * several users (some renamed mid-way, so name snapshots split groups), keys that are live, revoked
 * or deleted, all three sources (legacy rows on real users too), several models, and rows on hour,
 * day and month boundaries.
 */

const LEGACY = 'legacy-secret';

/** mulberry32: small, fast, good enough for test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Caller {
  userId: string;
  key: { id: string; key: string; name: string; prefix: string };
}

interface DataSet {
  rows: UsageRow[];
  callers: Caller[];
  admin: Caller;
  keyStates: Map<string, { prefix: string; revoked: boolean }>;
  keyIds: string[];
}

const SCENARIOS = [
  { seed: 1, rows: 4000, extraKeys: 8 },
  // More than 200 keys: by_key is capped and `truncated` flips.
  { seed: 7, rows: 3000, extraKeys: 240 },
];

async function seed(t: TestApp, seedValue: number, rowCount: number, extraKeys: number): Promise<DataSet> {
  const random = prng(seedValue);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const db = t.database.db;
  const keyStates = new Map<string, { prefix: string; revoked: boolean }>();
  const callers: Caller[] = [];
  const users: { id: string; names: string[]; keys: { id: string; name: string }[] }[] = [];
  for (let u = 0; u < 6; u++) {
    const user = await createUser(db, { name: `User ${u}`, role: u === 0 ? 'admin' : 'user' });
    const key = await createApiKey(db, { userId: user.id, name: `caller-${u}` });
    keyStates.set(key.id, { prefix: key.prefix, revoked: false });
    callers.push({ userId: user.id, key });
    const keys = [{ id: key.id, name: key.name }];
    const revoked = await createApiKey(db, { userId: user.id, name: `old-${u}`, revokedAt: NOW - DAY });
    keyStates.set(revoked.id, { prefix: revoked.prefix, revoked: true });
    keys.push({ id: revoked.id, name: revoked.name });
    users.push({ id: user.id, names: [`User ${u}`, `User ${u} (renamed)`], keys });
  }
  // Keys that no longer exist (deleted, or from an import): they report revoked with no prefix.
  for (let k = 0; k < extraKeys; k++) {
    const owner = users[k % users.length];
    owner?.keys.push({ id: `gone-${String(k).padStart(3, '0')}`, name: `gone ${k}` });
  }
  const models = ['gpt-4', 'llama-3', 'mistral', 'embed'];
  const rows: UsageRow[] = [];
  for (let i = 0; i < rowCount; i++) {
    const legacyUser = random() < 0.05;
    const user = pick(users);
    const roll = random();
    const source = legacyUser ? 'legacy' : roll < 0.6 ? 'apikey' : roll < 0.93 ? 'web' : 'legacy';
    const key = source === 'apikey' ? pick(user.keys) : null;
    // Mostly spread over 60 days; some exactly on hour/day/month boundaries; a few just ahead of now.
    const shape = random();
    let at = NOW - Math.floor(random() * 60 * DAY);
    if (shape < 0.1) at -= at % HOUR;
    else if (shape < 0.15) at -= at % DAY;
    else if (shape < 0.17) at = Date.UTC(2026, 10 - Math.floor(random() * 2), 1);
    else if (shape < 0.18) at = NOW + Math.floor(random() * HOUR);
    const prompt = Math.floor(random() * 500);
    const completion = Math.floor(random() * 300);
    rows.push({
      id: randomUUID(),
      user_id: legacyUser ? 'legacy-api-key' : user.id,
      user_name: legacyUser ? 'API Key User' : (pick(user.names) ?? ''),
      source,
      api_key_id: key?.id ?? null,
      api_key_name: key?.name ?? '',
      model: pick(models),
      endpoint: '/v1/chat/completions',
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      duration_ms: Math.floor(random() * 1000),
      created_at: at,
      usage_origin: random() < 0.2 ? 'estimated' : 'provider',
      aborted: random() < 0.05 ? 1 : 0,
      stream: random() < 0.5 ? 1 : 0,
      upstream: 'default',
      // Cost: a third unpriced, the rest priced by the catalogue or an admin price.
      ...(random() < 0.33
        ? { cost_nanos: null, price_source: 'none' as const }
        : {
            cost_nanos: Math.floor(random() * 5_000_000),
            price_source: random() < 0.5 ? ('admin' as const) : ('catalog' as const),
          }),
    });
  }
  // In several batches, as the recorder writes them: the rollups add up across batches.
  for (let i = 0; i < rows.length; i += 700) await insertUsageBatch(db, rows.slice(i, i + 700));
  const admin = callers[0] as Caller;
  return {
    rows,
    callers: callers.slice(1),
    admin,
    keyStates,
    keyIds: users.flatMap((user) => user.keys.map((key) => key.id)),
  };
}

interface WindowQuery {
  period?: string;
  from?: string;
  to?: string;
  granularity?: BucketUnit;
}

function queries(random: () => number): WindowQuery[] {
  const list: WindowQuery[] = [
    { period: 'day' },
    { period: 'week' },
    { period: 'month' },
    { period: 'all' },
    { period: 'bogus' },
    { period: 'week', granularity: 'hour' },
    { period: 'all', granularity: 'day' },
  ];
  for (let i = 0; i < 5; i++) {
    const from = NOW - Math.floor(random() * 70 * DAY);
    const to = from + Math.floor(random() * 40 * DAY) + 1;
    const granularity = (['hour', 'day', 'month', undefined] as const)[Math.floor(random() * 4)];
    list.push({ from: new Date(from).toISOString(), to: new Date(to).toISOString(), granularity });
  }
  list.push({ from: new Date(NOW - 36 * HOUR - 1234).toISOString() });
  list.push({ to: new Date(NOW - 20 * DAY).toISOString() });
  return list;
}

function search(query: WindowQuery, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...query, ...extra })) {
    if (value !== undefined) params.set(name, value);
  }
  return params.toString();
}

describe.each(DIALECTS)('every usage endpoint equals the brute force over raw rows on %s', (dialect) => {
  describe.each(SCENARIOS)(
    'seed $seed, $rows rows, $extraKeys extra keys',
    ({ seed: seedValue, rows, extraKeys }) => {
      let t: TestApp;
      let data: DataSet;
      beforeAll(async () => {
        t = await startTestApp({ dialect, settings: { apiKeys: LEGACY }, now: () => NOW });
        data = await seed(t, seedValue, rows, extraKeys);
      });
      afterAll(async () => t?.close());

      it('self usage, self sources and /v1/usage for every caller and window', async () => {
        const random = prng(seedValue * 31);
        for (const query of queries(random)) {
          const window = bruteWindow(query, NOW);
          for (const caller of data.callers) {
            const usage = await getJson(t.app, `/api/auth/usage?${search(query)}`, caller.key.key);
            expect(usage.body, `usage ${search(query)}`).toEqual(
              bruteUsage(data.rows, window, { userId: caller.userId, admin: false }),
            );
            const sources = await getJson(t.app, `/api/auth/usage/sources?${search(query)}`, caller.key.key);
            expect(sources.body, `sources ${search(query)}`).toEqual(
              bruteSources(data.rows, window, { userId: caller.userId, admin: false }, data.keyStates),
            );
            const own = await getJson(t.app, `/v1/usage?${search(query)}`, caller.key.key);
            expect(own.body, `/v1/usage ${search(query)}`).toEqual(
              bruteKeyUsage(data.rows, window, {
                id: caller.key.id,
                name: caller.key.name,
                prefix: caller.key.prefix,
              }),
            );
          }
          // The legacy caller's own rows are the synthetic legacy user's.
          const legacy = await getJson(t.app, `/api/auth/usage?${search(query)}`, LEGACY);
          expect(legacy.body).toEqual(
            bruteUsage(data.rows, window, { userId: 'legacy-api-key', admin: false }),
          );
        }
      });

      it('admin usage and admin sources with every filter combination', async () => {
        const random = prng(seedValue * 17);
        const someUser = data.callers[1]?.userId ?? '';
        const someKey = data.keyIds[Math.floor(random() * data.keyIds.length)] ?? '';
        const filters: { user_id?: string; api_key_id?: string }[] = [
          {},
          { user_id: someUser },
          { user_id: 'legacy-api-key' },
          { api_key_id: someKey },
          { user_id: someUser, api_key_id: someKey },
        ];
        for (const query of queries(random)) {
          const window = bruteWindow(query, NOW);
          for (const filter of filters) {
            const sources = await getJson(
              t.app,
              `/api/auth/admin/usage/sources?${search(query, filter)}`,
              data.admin.key.key,
            );
            expect(sources.body, `admin sources ${search(query, filter)}`).toEqual(
              bruteSources(
                data.rows,
                window,
                { userId: filter.user_id, apiKeyId: filter.api_key_id, admin: true },
                data.keyStates,
              ),
            );
          }
          for (const userId of [undefined, someUser]) {
            const usage = await getJson(
              t.app,
              `/api/auth/admin/usage?${search(query, userId ? { user_id: userId } : {})}`,
              data.admin.key.key,
            );
            expect(usage.body).toEqual(bruteUsage(data.rows, window, { userId, admin: true }));
          }
        }
      });

      it('admin export (NDJSON) returns exactly the raw rows of the window, in (created_at, id) order', async () => {
        for (const query of [{ period: 'week' }, { period: 'all' }] as WindowQuery[]) {
          const window = bruteWindow(query, NOW);
          const response = await t.app.inject({
            method: 'GET',
            url: `/api/auth/admin/usage/export?format=ndjson&${search(query)}`,
            headers: { authorization: `Bearer ${data.admin.key.key}` },
          });
          const lines = response.body.trim().split('\n').filter(Boolean);
          const exported = lines.map((line) => JSON.parse(line) as { id: string; total_tokens: number });
          const expected = data.rows
            .filter((row) => inWindow(row, window))
            .sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
          expect(exported.map((row) => row.id)).toEqual(expected.map((row) => row.id));
          expect(exported.map((row) => row.total_tokens)).toEqual(expected.map((row) => row.total_tokens));
        }
      });
    },
  );
});
