import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/server/db/connection.ts';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import type { SourcesResponse, UsageResponse } from '../../src/shared/usage.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { DAY, getJson, HOUR, NOW, usageRow } from './helpers.ts';

const LEGACY = 'legacy-secret';
type Key = Awaited<ReturnType<typeof createApiKey>>;

describe.each(DIALECTS)('usage endpoints on %s (reference usage_test)', (dialect) => {
  let t: TestApp;
  let alice: Key;
  let bob: Key;
  let admin: Key;
  let aliceId: string;
  let bobId: string;

  beforeAll(async () => {
    t = await startTestApp({ dialect, settings: { apiKeys: LEGACY }, now: () => NOW });
    const db = t.database.db;
    const a = await createUser(db, { name: 'Alice' });
    const b = await createUser(db, { name: 'Bob' });
    const root = await createUser(db, { name: 'Root', role: 'admin' });
    aliceId = a.id;
    bobId = b.id;
    alice = await createApiKey(db, { userId: a.id, name: 'alice-key' });
    bob = await createApiKey(db, { userId: b.id, name: 'bob-key' });
    admin = await createApiKey(db, { userId: root.id, name: 'root-key' });
    await insertUsageBatch(db, [
      usageRow({ user_id: a.id, user_name: 'Alice', prompt_tokens: 100, created_at: NOW - HOUR }),
      usageRow({ user_id: a.id, user_name: 'Alice', prompt_tokens: 100, created_at: NOW - 2 * HOUR }),
      usageRow({ user_id: a.id, user_name: 'Alice', prompt_tokens: 100, created_at: NOW - 48 * HOUR }),
      usageRow({
        user_id: b.id,
        user_name: 'Bob',
        prompt_tokens: 50,
        model: 'llama',
        created_at: NOW - HOUR,
      }),
    ]);
  });
  afterAll(async () => t?.close());

  it("returns only the caller's rows: prompt sum 300 from 3×100, the other user excluded", async () => {
    const { status, body } = await getJson<UsageResponse>(t.app, '/api/auth/usage?period=month', alice.key);
    expect(status).toBe(200);
    expect(body.totals).toEqual({
      prompt_tokens: 300,
      completion_tokens: 15,
      total_tokens: 45,
      request_count: 3,
      cost: 0,
      unpriced_requests: 3,
    });
    expect(body.usage.every((bucket) => bucket.model === 'gpt-4' && bucket.user_id === undefined)).toBe(true);
    // Daily buckets, sparse, ascending.
    expect(body.usage.map((bucket) => bucket.bucket)).toEqual(['2026-11-26', '2026-11-28']);
  });

  it('period day excludes a 48 h old row (200) and month includes it (300); buckets follow the period', async () => {
    const day = await getJson<UsageResponse>(t.app, '/api/auth/usage?period=day', alice.key);
    expect(day.body.totals.prompt_tokens).toBe(200);
    expect(day.body.usage.map((bucket) => bucket.bucket)).toEqual(['2026-11-28 10:00', '2026-11-28 11:00']);
    // The window is whole hours: 24 h before 12:30 floored to 12:00 the day before.
    expect(day.body.window).toEqual({
      from: '2026-11-27T12:00:00.000Z',
      to: null,
      granularity: 'hour',
    });
    const week = await getJson<UsageResponse>(t.app, '/api/auth/usage?period=week', alice.key);
    expect(week.body.totals.prompt_tokens).toBe(300);
    expect(week.body.window.from).toBe('2026-11-21T00:00:00.000Z');
    const all = await getJson<UsageResponse>(t.app, '/api/auth/usage?period=all', alice.key);
    expect(all.body.usage).toEqual([
      {
        bucket: '2026-11',
        model: 'gpt-4',
        prompt_tokens: 300,
        completion_tokens: 15,
        total_tokens: 45,
        request_count: 3,
        cost: 0,
        unpriced_requests: 3,
      },
    ]);
    expect(all.body.window).toEqual({ from: null, to: null, granularity: 'month' });
  });

  it('treats an empty or unknown period as month', async () => {
    const month = await getJson<UsageResponse>(t.app, '/api/auth/usage?period=month', alice.key);
    for (const url of ['/api/auth/usage', '/api/auth/usage?period=', '/api/auth/usage?period=fortnight']) {
      const { status, body } = await getJson<UsageResponse>(t.app, url, alice.key);
      expect(status).toBe(200);
      expect(body).toEqual(month.body);
    }
  });

  it('admin usage returns every user with user fields, and user_id filters to one user', async () => {
    const all = await getJson<UsageResponse>(t.app, '/api/auth/admin/usage?period=month', admin.key);
    expect(all.status).toBe(200);
    expect(new Set(all.body.usage.map((bucket) => bucket.user_id))).toEqual(new Set([aliceId, bobId]));
    expect(all.body.usage).toContainEqual({
      bucket: '2026-11-28',
      model: 'llama',
      user_id: bobId,
      user_name: 'Bob',
      prompt_tokens: 50,
      completion_tokens: 5,
      total_tokens: 15,
      request_count: 1,
      cost: 0,
      unpriced_requests: 1,
    });
    expect(all.body.totals.prompt_tokens).toBe(350);
    const one = await getJson<UsageResponse>(t.app, `/api/auth/admin/usage?user_id=${bobId}`, admin.key);
    expect(one.body.usage.map((bucket) => bucket.user_id)).toEqual([bobId]);
    expect(one.body.totals.prompt_tokens).toBe(50);
    const legacy = await getJson<UsageResponse>(t.app, '/api/auth/admin/usage', LEGACY);
    expect(legacy.status).toBe(200);
    expect(legacy.body).toEqual(all.body);
  });

  it('answers 401 without credentials and 403 to non-admins, in the reference shapes', async () => {
    expect(await getJson(t.app, '/api/auth/usage')).toEqual({
      status: 401,
      body: { error: 'not authenticated' },
    });
    expect(await getJson(t.app, '/api/auth/usage/sources')).toEqual({
      status: 401,
      body: { error: 'not authenticated' },
    });
    for (const path of ['/api/auth/admin/usage', '/api/auth/admin/usage/sources']) {
      expect(await getJson(t.app, path)).toEqual({
        status: 401,
        body: { error: { message: 'Authentication required', code: 401, type: 'authentication_error' } },
      });
      expect(await getJson(t.app, path, bob.key)).toEqual({
        status: 403,
        body: { error: { message: 'Admin access required', code: 403, type: 'authorization_error' } },
      });
    }
  });

  it('selects any range with from/to; the bucket size follows its length or granularity', async () => {
    const from = new Date(NOW - 50 * HOUR).toISOString();
    const to = new Date(NOW - 40 * HOUR).toISOString();
    const hourly = await getJson<UsageResponse>(t.app, `/api/auth/usage?from=${from}&to=${to}`, alice.key);
    expect(hourly.status).toBe(200);
    expect(hourly.body.usage.map((bucket) => [bucket.bucket, bucket.prompt_tokens])).toEqual([
      ['2026-11-26 12:00', 100],
    ]);
    expect(hourly.body.window).toEqual({
      from: '2026-11-26T10:00:00.000Z',
      to: '2026-11-26T21:00:00.000Z',
      granularity: 'hour',
    });
    const monthly = await getJson<UsageResponse>(
      t.app,
      `/api/auth/usage?from=2026-11-01&to=2026-11-27T00:00:00Z&granularity=month`,
      alice.key,
    );
    // Whole buckets: the month of November, though `to` is the 27th.
    expect(monthly.body.usage.map((bucket) => [bucket.bucket, bucket.prompt_tokens])).toEqual([
      ['2026-11', 300],
    ]);
    const daily = await getJson<UsageResponse>(
      t.app,
      `/api/auth/usage?from=2026-10-01T00:00:00%2B02:00&to=2026-11-27T00:00:00Z`,
      alice.key,
    );
    expect(daily.body.window).toEqual({
      from: '2026-09-30T00:00:00.000Z',
      to: '2026-11-27T00:00:00.000Z',
      granularity: 'day',
    });
    expect(daily.body.usage.map((bucket) => bucket.bucket)).toEqual(['2026-11-26']);
    const openEnded = await getJson<UsageResponse>(t.app, '/api/auth/usage?from=2026-11-28', alice.key);
    expect(openEnded.body.totals.prompt_tokens).toBe(200);
    expect(openEnded.body.window.granularity).toBe('hour');
    const periodHourly = await getJson<UsageResponse>(
      t.app,
      '/api/auth/usage?period=week&granularity=hour',
      alice.key,
    );
    expect(periodHourly.body.usage).toHaveLength(3);
  });

  it.each([
    ['from=yesterday', 'from: '],
    ['to=2026-13-45T00:00:00Z', 'to: '],
    ['from=2026-11-28T00:00:00', 'from: '],
    ['granularity=week', 'granularity: '],
    ['from=2026-11-28T00:00:00Z&to=2026-11-27T00:00:00Z', 'to: must be after from'],
  ])('rejects %s with 400 naming the parameter', async (query, message) => {
    for (const path of ['/api/auth/usage', '/api/auth/usage/sources', '/api/auth/usage/export']) {
      const { status, body } = await getJson<{ error: string }>(t.app, `${path}?${query}`, alice.key);
      expect(status).toBe(400);
      expect(body.error.startsWith(message)).toBe(true);
    }
    const admin400 = await getJson<{ error: string }>(t.app, `/api/auth/admin/usage?${query}`, admin.key);
    expect(admin400.status).toBe(400);
    expect(admin400.body.error.startsWith(message)).toBe(true);
  });
});

describe.each(DIALECTS)('sources endpoints on %s (reference usage_test, auth_test, #9935)', (dialect) => {
  let t: TestApp;
  let k1: Key;
  let k2: Key;
  let bobKey: Key;
  let admin: Key;
  let aliceId: string;
  let bobId: string;
  let carolId: string;
  const deletedKeyAt = NOW - 1000;

  beforeAll(async () => {
    t = await startTestApp({ dialect, settings: { apiKeys: LEGACY }, now: () => NOW });
    const db = t.database.db;
    const a = await createUser(db, { name: 'Alice' });
    const b = await createUser(db, { name: 'Bob' });
    const c = await createUser(db, { name: 'Carol' });
    const root = await createUser(db, { name: 'Root', role: 'admin' });
    aliceId = a.id;
    bobId = b.id;
    carolId = c.id;
    k1 = await createApiKey(db, { userId: a.id, name: 'ci-runner' });
    k2 = await createApiKey(db, { userId: a.id, name: 'notebook' });
    bobKey = await createApiKey(db, { userId: b.id, name: 'bob-key' });
    admin = await createApiKey(db, { userId: root.id, name: 'root-key' });
    const at = NOW - 2 * HOUR;
    const key = (k: Key, total: number, userId: string, userName: string, created = at) =>
      usageRow({
        user_id: userId,
        user_name: userName,
        source: 'apikey',
        api_key_id: k.id,
        api_key_name: k.name,
        total_tokens: total,
        created_at: created,
      });
    await insertUsageBatch(db, [
      key(k1, 50, a.id, 'Alice'),
      key(k1, 30, a.id, 'Alice', NOW - 26 * HOUR),
      key(k2, 20, a.id, 'Alice'),
      usageRow({ user_id: a.id, user_name: 'Alice', source: 'web', total_tokens: 50, created_at: at }),
      usageRow({ user_id: a.id, user_name: 'Alice', source: 'legacy', total_tokens: 30, created_at: at }),
      key(bobKey, 90, b.id, 'Bob'),
      usageRow({ user_id: b.id, user_name: 'Bob', source: 'web', total_tokens: 70, created_at: at }),
      usageRow({
        user_id: 'legacy-api-key',
        user_name: 'API Key User',
        source: 'legacy',
        total_tokens: 10,
        created_at: at,
      }),
      usageRow({
        user_id: c.id,
        user_name: 'Carol',
        source: 'apikey',
        api_key_id: 'deleted-key',
        api_key_name: 'old-name',
        total_tokens: 5,
        created_at: deletedKeyAt,
      }),
    ]);
    // k2 is revoked after its traffic: its tombstone keeps the name and reports revoked.
    await db.kysely.updateTable('api_keys').set({ revoked_at: NOW }).where('id', '=', k2.id).execute();
  });
  afterAll(async () => t?.close());

  it("shows the caller's traffic without legacy: grand total 150, apikey 100, web 50", async () => {
    const { status, body } = await getJson<SourcesResponse>(t.app, '/api/auth/usage/sources', k1.key);
    expect(status).toBe(200);
    expect(body.totals.grand_total).toEqual({ tokens: 150, requests: 4, cost: 0, unpriced_requests: 4 });
    expect(body.totals.by_source).toEqual({
      apikey: { tokens: 100, requests: 3, cost: 0, unpriced_requests: 3 },
      web: { tokens: 50, requests: 1, cost: 0, unpriced_requests: 1 },
    });
    expect(body.truncated).toBe(false);
    expect('by_user_source' in body.totals).toBe(false);
    expect(body.buckets.some((bucket) => bucket.source === 'legacy')).toBe(false);
    // Self buckets carry neither user fields nor a model; web buckets omit the key fields.
    expect(body.buckets).toEqual([
      {
        bucket: '2026-11-27',
        source: 'apikey',
        api_key_id: k1.id,
        api_key_name: 'ci-runner',
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 30,
        request_count: 1,
        cost: 0,
        unpriced_requests: 1,
      },
      ...[
        [k1.id, 'ci-runner', 50],
        [k2.id, 'notebook', 20],
      ]
        .sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1))
        .map(([id, name, total]) => ({
          bucket: '2026-11-28',
          source: 'apikey',
          api_key_id: id,
          api_key_name: name,
          prompt_tokens: 10,
          completion_tokens: 5,
          total_tokens: total,
          request_count: 1,
          cost: 0,
          unpriced_requests: 1,
        })),
      {
        bucket: '2026-11-28',
        source: 'web',
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 50,
        request_count: 1,
        cost: 0,
        unpriced_requests: 1,
      },
    ]);
  });

  it('reports by_key with user fields, prefixes and server-side revocation (tombstones keep the name)', async () => {
    const { body } = await getJson<SourcesResponse>(t.app, '/api/auth/usage/sources', k1.key);
    expect(body.totals.by_key).toEqual([
      {
        api_key_id: k1.id,
        api_key_name: 'ci-runner',
        user_id: aliceId,
        user_name: 'Alice',
        tokens: 80,
        requests: 2,
        cost: 0,
        unpriced_requests: 2,
        last_used: new Date(NOW - 2 * HOUR).toISOString(),
        key_prefix: k1.prefix,
        revoked: false,
      },
      {
        api_key_id: k2.id,
        api_key_name: 'notebook',
        user_id: aliceId,
        user_name: 'Alice',
        tokens: 20,
        requests: 1,
        cost: 0,
        unpriced_requests: 1,
        last_used: new Date(NOW - 2 * HOUR).toISOString(),
        key_prefix: k2.prefix,
        revoked: true,
      },
    ]);
  });

  it('keeps the snapshot of a deleted key: one by_key entry, revoked, last_used within 2 s', async () => {
    const { body } = await getJson<SourcesResponse>(
      t.app,
      `/api/auth/admin/usage/sources?user_id=${carolId}`,
      admin.key,
    );
    expect(body.totals.by_key).toHaveLength(1);
    const entry = body.totals.by_key[0];
    expect(entry).toMatchObject({
      api_key_id: 'deleted-key',
      api_key_name: 'old-name',
      user_name: 'Carol',
      key_prefix: '',
      revoked: true,
    });
    expect(Math.abs(Date.parse(entry?.last_used ?? '') - deletedKeyAt)).toBeLessThan(2000);
  });

  it('admin view includes legacy and attributes non-key traffic per user (#9935)', async () => {
    const { status, body } = await getJson<SourcesResponse>(
      t.app,
      '/api/auth/admin/usage/sources',
      admin.key,
    );
    expect(status).toBe(200);
    expect(body.totals.by_source).toEqual({
      apikey: { tokens: 195, requests: 5, cost: 0, unpriced_requests: 5 },
      web: { tokens: 120, requests: 2, cost: 0, unpriced_requests: 2 },
      legacy: { tokens: 40, requests: 2, cost: 0, unpriced_requests: 2 },
    });
    expect(body.totals.grand_total).toEqual({ tokens: 355, requests: 9, cost: 0, unpriced_requests: 9 });
    expect(body.totals.by_user_source).toEqual([
      {
        source: 'web',
        user_id: bobId,
        user_name: 'Bob',
        tokens: 70,
        requests: 1,
        cost: 0,
        unpriced_requests: 1,
      },
      {
        source: 'web',
        user_id: aliceId,
        user_name: 'Alice',
        tokens: 50,
        requests: 1,
        cost: 0,
        unpriced_requests: 1,
      },
      {
        source: 'legacy',
        user_id: aliceId,
        user_name: 'Alice',
        tokens: 30,
        requests: 1,
        cost: 0,
        unpriced_requests: 1,
      },
      {
        source: 'legacy',
        user_id: 'legacy-api-key',
        user_name: 'API Key User',
        tokens: 10,
        requests: 1,
        cost: 0,
        unpriced_requests: 1,
      },
    ]);
    expect(body.totals.by_key.map((entry) => [entry.api_key_name, entry.user_id, entry.tokens])).toEqual([
      ['bob-key', bobId, 90],
      ['ci-runner', aliceId, 80],
      ['notebook', aliceId, 20],
      ['old-name', carolId, 5],
    ]);
    expect(body.truncated).toBe(false);
    expect(body.buckets).toContainEqual({
      bucket: '2026-11-28',
      source: 'legacy',
      user_id: 'legacy-api-key',
      user_name: 'API Key User',
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 10,
      request_count: 1,
      cost: 0,
      unpriced_requests: 1,
    });
    const legacyCaller = await getJson<SourcesResponse>(t.app, '/api/auth/admin/usage/sources', LEGACY);
    expect(legacyCaller.body).toEqual(body);
  });

  it('filters by user_id and api_key_id combined with AND (total 20), without by_user_source', async () => {
    const { body } = await getJson<SourcesResponse>(
      t.app,
      `/api/auth/admin/usage/sources?user_id=${aliceId}&api_key_id=${k2.id}`,
      admin.key,
    );
    expect(body.totals.grand_total).toEqual({ tokens: 20, requests: 1, cost: 0, unpriced_requests: 1 });
    expect('by_user_source' in body.totals).toBe(false);
    const wrongUser = await getJson<SourcesResponse>(
      t.app,
      `/api/auth/admin/usage/sources?user_id=${bobId}&api_key_id=${k2.id}`,
      admin.key,
    );
    expect(wrongUser.body.totals).toEqual({
      by_source: {},
      by_key: [],
      grand_total: { tokens: 0, requests: 0, cost: 0, unpriced_requests: 0 },
    });
    expect(wrongUser.body.buckets).toEqual([]);
    const empty = await getJson<SourcesResponse>(t.app, '/api/auth/admin/usage/sources?user_id=', admin.key);
    expect(empty.body.totals.grand_total.tokens).toBe(355);
  });

  it('GET /v1/usage returns the calling key its own usage only', async () => {
    const { status, body } = await getJson<Record<string, unknown>>(t.app, '/v1/usage?period=week', k1.key);
    expect(status).toBe(200);
    expect(body).toEqual({
      object: 'usage',
      api_key: { id: k1.id, name: 'ci-runner', prefix: k1.prefix },
      usage: [
        {
          bucket: '2026-11-27',
          model: 'gpt-4',
          prompt_tokens: 10,
          completion_tokens: 5,
          total_tokens: 30,
          request_count: 1,
          cost: 0,
          unpriced_requests: 1,
        },
        {
          bucket: '2026-11-28',
          model: 'gpt-4',
          prompt_tokens: 10,
          completion_tokens: 5,
          total_tokens: 50,
          request_count: 1,
          cost: 0,
          unpriced_requests: 1,
        },
      ],
      totals: {
        prompt_tokens: 20,
        completion_tokens: 10,
        total_tokens: 80,
        request_count: 2,
        cost: 0,
        unpriced_requests: 2,
      },
      window: { from: '2026-11-21T00:00:00.000Z', to: null, granularity: 'day' },
    });
    const day = await getJson<{ totals: { total_tokens: number } }>(t.app, '/v1/usage?period=day', k1.key);
    expect(day.body.totals.total_tokens).toBe(50);
  });

  it('GET /v1/usage refuses legacy keys (403) and missing or revoked keys (401) in OpenAI envelopes', async () => {
    const legacy = await getJson<{ error: { type: string; code: unknown; message: string } }>(
      t.app,
      '/v1/usage',
      LEGACY,
    );
    expect(legacy.status).toBe(403);
    expect(legacy.body.error).toMatchObject({ type: 'authorization_error', code: 'api_key_required' });
    expect(legacy.body.error.message).toContain('API key');
    expect((await getJson(t.app, '/v1/usage')).status).toBe(401);
    expect((await getJson(t.app, '/v1/usage', k2.key)).status).toBe(401);
    const bad = await getJson<{ error: { message: string } }>(t.app, '/v1/usage?granularity=year', k1.key);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message.startsWith('granularity:')).toBe(true);
  });
});

describe.each(DIALECTS)('by_key cap on %s', (dialect) => {
  let t: TestApp;
  let caller: Key;
  let admin: Key;

  beforeAll(async () => {
    t = await startTestApp({ dialect, now: () => NOW });
    const db = t.database.db;
    const dave = await createUser(db, { name: 'Dave' });
    const root = await createUser(db, { name: 'Root', role: 'admin' });
    caller = await createApiKey(db, { userId: dave.id });
    admin = await createApiKey(db, { userId: root.id });
    // 210 keys with 1..210 tokens, spread over the last ten days.
    await insertUsageBatch(
      db,
      Array.from({ length: 210 }, (_, i) =>
        usageRow({
          user_id: dave.id,
          user_name: 'Dave',
          source: 'apikey',
          api_key_id: `key-${String(i).padStart(3, '0')}`,
          api_key_name: `name-${i}`,
          total_tokens: i + 1,
          created_at: NOW - (i % 10) * DAY - HOUR,
        }),
      ),
    );
  });
  afterAll(async () => t?.close());

  it('210 keys give truncated=true and 200 entries sorted by tokens descending (admin)', async () => {
    const { body } = await getJson<SourcesResponse>(t.app, '/api/auth/admin/usage/sources', admin.key);
    expect(body.truncated).toBe(true);
    expect(body.totals.by_key).toHaveLength(200);
    expect(body.totals.by_key.map((entry) => entry.tokens)).toEqual(
      Array.from({ length: 200 }, (_, i) => 210 - i),
    );
    expect(body.totals.grand_total).toEqual({
      tokens: (210 * 211) / 2,
      requests: 210,
      cost: 0,
      unpriced_requests: 210,
    });
  });

  it('the self endpoint caps by_key at 200 too but always reports truncated=false', async () => {
    const { body } = await getJson<SourcesResponse>(t.app, '/api/auth/usage/sources', caller.key);
    expect(body.truncated).toBe(false);
    expect(body.totals.by_key).toHaveLength(200);
    expect(body.totals.by_key[0]?.tokens).toBe(210);
  });
});

describe.each(DIALECTS)('admin sources day-part cache on %s', (dialect) => {
  it('serves writes from another instance at once: a changed day is rebuilt, the others reused', async () => {
    const a = await startTestApp({ dialect, now: () => NOW });
    // Another instance's connection to the same database.
    const other = await openDatabase(a.database.url);
    try {
      const db = a.database.db;
      const root = await createUser(db, { name: 'Root', role: 'admin' });
      const admin = await createApiKey(db, { userId: root.id });
      const row = (total: number, at: number) =>
        usageRow({ user_id: root.id, user_name: 'Root', source: 'web', total_tokens: total, created_at: at });
      const spare = await createApiKey(db, { userId: root.id, name: 'spare' });
      await insertUsageBatch(db, [
        row(1, NOW - 3 * DAY),
        row(2, NOW - HOUR),
        { ...row(0, NOW - 3 * DAY), source: 'apikey', api_key_id: spare.id, api_key_name: 'spare' },
      ]);
      const first = await getJson<SourcesResponse>(a.app, '/api/auth/admin/usage/sources', admin.key);
      expect(first.body.totals.grand_total).toEqual({
        tokens: 3,
        requests: 3,
        cost: 0,
        unpriced_requests: 3,
      });
      expect(first.body.totals.by_key.map((entry) => entry.revoked)).toEqual([false]);
      // Revoking a key changes no usage, yet the (memoised) answer reports it at once.
      await db.kysely.updateTable('api_keys').set({ revoked_at: NOW }).where('id', '=', spare.id).execute();
      const revoked = await getJson<SourcesResponse>(a.app, '/api/auth/admin/usage/sources', admin.key);
      expect(revoked.body.totals.by_key.map((entry) => entry.revoked)).toEqual([true]);
      expect(revoked.body.buckets).toEqual(first.body.buckets);
      // Another writer (another instance's connection) adds to an old day and to today.
      await insertUsageBatch(other, [row(10, NOW - 3 * DAY + 1), row(100, NOW - 2 * HOUR)]);
      const second = await getJson<SourcesResponse>(a.app, '/api/auth/admin/usage/sources', admin.key);
      expect(second.body.totals.grand_total).toEqual({
        tokens: 113,
        requests: 5,
        cost: 0,
        unpriced_requests: 5,
      });
      expect(
        second.body.buckets.map((bucket) => [bucket.bucket, bucket.source, bucket.total_tokens]),
      ).toEqual([
        ['2026-11-25', 'apikey', 0],
        ['2026-11-25', 'web', 11],
        ['2026-11-28', 'web', 102],
      ]);
      // The week answer shares the cached days and agrees.
      const week = await getJson<SourcesResponse>(
        a.app,
        '/api/auth/admin/usage/sources?period=week',
        admin.key,
      );
      expect(week.body.buckets).toEqual(second.body.buckets);
      // A deleted day disappears.
      await other.kysely
        .deleteFrom('usage_rollups_hourly')
        .where('hour', '<', NOW - 2 * DAY)
        .execute();
      const third = await getJson<SourcesResponse>(a.app, '/api/auth/admin/usage/sources', admin.key);
      expect(third.body.buckets.map((bucket) => bucket.bucket)).toEqual(['2026-11-28']);
      expect(third.body.totals.grand_total).toEqual({
        tokens: 102,
        requests: 2,
        cost: 0,
        unpriced_requests: 2,
      });
    } finally {
      await other.close();
      await a.close();
    }
  });
});
