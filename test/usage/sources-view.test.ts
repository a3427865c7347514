import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import type { SourcesResponse, UsageResponse } from '../../src/shared/usage.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { DAY, getJson, HOUR, NOW, usageRow } from './helpers.ts';

type Key = Awaited<ReturnType<typeof createApiKey>>;

/**
 * The dashboard's extras on the sources and usage endpoints (`top`, `keep`, `compare=previous`) and
 * compressed `/api/*` answers; the default answers keep LocalAI's shape.
 */
describe.each(DIALECTS)('sources view and compression on %s', (dialect) => {
  let t: TestApp;
  let admin: Key;
  let alice: Key;
  const keys: Key[] = [];
  let aliceId = '';
  let bobId = '';

  beforeAll(async () => {
    t = await startTestApp({ dialect, now: () => NOW });
    const db = t.database.db;
    const root = await createUser(db, { name: 'Root', role: 'admin' });
    const a = await createUser(db, { name: 'Alice' });
    const b = await createUser(db, { name: 'Bob' });
    aliceId = a.id;
    bobId = b.id;
    admin = await createApiKey(db, { userId: root.id, name: 'root-key' });
    alice = await createApiKey(db, { userId: a.id, name: 'alice-main' });
    // Alice's five keys: key i uses 100 × (i + 1) tokens on each of two days.
    for (let i = 0; i < 5; i++) keys.push(await createApiKey(db, { userId: a.id, name: `alice-${i}` }));
    const rows = keys.flatMap((key, i) =>
      [NOW - HOUR, NOW - 2 * DAY].map((created_at) =>
        usageRow({
          user_id: a.id,
          user_name: 'Alice',
          source: 'apikey',
          api_key_id: key.id,
          api_key_name: key.name,
          prompt_tokens: 100 * (i + 1),
          completion_tokens: 0,
          total_tokens: 100 * (i + 1),
          created_at,
        }),
      ),
    );
    // Twenty models on the largest key: its /v1/usage answer is well over the compression threshold.
    for (let m = 0; m < 20; m++) {
      rows.push(
        usageRow({
          user_id: a.id,
          user_name: 'Alice',
          source: 'apikey',
          api_key_id: keys[4]?.id ?? '',
          api_key_name: 'alice-4',
          model: `model-${m}`,
          prompt_tokens: 1,
          completion_tokens: 0,
          total_tokens: 1,
          created_at: NOW - HOUR,
        }),
      );
    }
    rows.push(
      usageRow({ user_id: a.id, user_name: 'Alice', total_tokens: 50, created_at: NOW - 3 * HOUR }),
      usageRow({ user_id: b.id, user_name: 'Bob', total_tokens: 20, created_at: NOW - 5 * HOUR }),
      usageRow({
        user_id: b.id,
        user_name: 'Bob',
        source: 'legacy',
        total_tokens: 7,
        created_at: NOW - HOUR,
      }),
      // The previous month (31 whole days before today's window start) and the previous day.
      usageRow({ user_id: a.id, user_name: 'Alice', total_tokens: 1000, created_at: NOW - 40 * DAY }),
      usageRow({ user_id: a.id, user_name: 'Alice', total_tokens: 300, created_at: NOW - 30 * HOUR }),
    );
    await insertUsageBatch(db, rows);
  });
  afterAll(async () => t?.close());

  it('the default answers carry none of the extras (LocalAI shape)', async () => {
    const { body } = await getJson<SourcesResponse>(t.app, '/api/auth/admin/usage/sources', admin.key);
    expect(Object.keys(body).sort()).toEqual(['buckets', 'totals', 'truncated', 'window']);
    expect(body.buckets.some((bucket) => 'other' in bucket)).toBe(false);
    expect(Object.keys(body.totals.by_key[0] ?? {}).sort()).toEqual(
      [
        'api_key_id',
        'api_key_name',
        'user_id',
        'user_name',
        'tokens',
        'requests',
        'last_used',
        'key_prefix',
        'revoked',
        'cost',
        'unpriced_requests',
      ].sort(),
    );
    const usage = await getJson<UsageResponse>(t.app, '/api/auth/usage', alice.key);
    expect(Object.keys(usage.body).sort()).toEqual(['totals', 'usage', 'window']);
  });

  it('top=2 keeps the two largest series and folds the rest into other buckets per source', async () => {
    const plain = (await getJson<SourcesResponse>(t.app, '/api/auth/admin/usage/sources', admin.key)).body;
    const { status, body } = await getJson<SourcesResponse>(
      t.app,
      '/api/auth/admin/usage/sources?top=2',
      admin.key,
    );
    expect(status).toBe(200);
    const kept = new Set(body.buckets.filter((b) => !b.other).map((b) => b.api_key_id ?? b.source));
    expect([...kept].sort()).toEqual([keys[4]?.id, keys[3]?.id].sort());
    // 3 smaller keys, Alice's and Bob's Web UI, Bob's legacy.
    expect(body.other_series).toBe(6);
    const other = body.buckets.filter((b) => b.other);
    expect(other.every((b) => b.api_key_id === undefined && b.user_id === undefined)).toBe(true);
    expect(new Set(other.map((b) => b.source))).toEqual(new Set(['apikey', 'web', 'legacy']));
    const sum = (list: typeof body.buckets) => list.reduce((s, b) => s + b.total_tokens, 0);
    expect(sum(body.buckets)).toBe(sum(plain.buckets));
    expect(sum(body.buckets)).toBe(body.totals.grand_total.tokens);
    // Totals are the default answer's plus sparklines that add up to each row.
    expect(body.totals.by_source).toEqual(plain.totals.by_source);
    expect(body.bucket_labels).toEqual([...new Set(plain.buckets.map((b) => b.bucket))].sort());
    for (const entry of body.totals.by_key) {
      expect(entry.sparkline).toHaveLength(body.bucket_labels?.length ?? -1);
      expect(entry.sparkline?.reduce((s, v) => s + v, 0)).toBe(entry.tokens);
    }
    const bobWeb = body.totals.by_user_source?.find((e) => e.user_id === bobId && e.source === 'web');
    expect(bobWeb?.sparkline?.reduce((s, v) => s + v, 0)).toBe(20);
    expect(bobWeb?.last_used).toBe(new Date(NOW - 5 * HOUR).toISOString());
    expect(body.source_last_used?.legacy).toBe(new Date(NOW - HOUR).toISOString());
    // Buckets stay in label order.
    const labels = body.buckets.map((b) => b.bucket);
    expect(labels).toEqual([...labels].sort());
  });

  it('with every series kept the buckets are the default answer’s, cached (admin month) or not', async () => {
    for (const query of ['', `&user_id=${aliceId}`, '&period=day']) {
      const plain = await getJson<SourcesResponse>(
        t.app,
        `/api/auth/admin/usage/sources?x=1${query}`,
        admin.key,
      );
      const all = await getJson<SourcesResponse>(
        t.app,
        `/api/auth/admin/usage/sources?top=50${query}`,
        admin.key,
      );
      expect(all.body.other_series, query).toBe(0);
      expect(all.body.buckets, query).toEqual(plain.body.buckets);
      expect(all.body.totals.grand_total, query).toEqual(plain.body.totals.grand_total);
    }
  });

  it('keep leaves one more series unfolded: the drill-in of a small key or a Web UI row', async () => {
    const small = keys[0]?.id ?? '';
    const { body } = await getJson<SourcesResponse>(
      t.app,
      `/api/auth/admin/usage/sources?top=1&keep=${encodeURIComponent(`web:${bobId}`)}`,
      admin.key,
    );
    expect(body.buckets.filter((b) => !b.other && b.source === 'web').map((b) => b.user_id)).toEqual([bobId]);
    const key = await getJson<SourcesResponse>(
      t.app,
      `/api/auth/admin/usage/sources?top=1&keep=${small}`,
      admin.key,
    );
    const own = key.body.buckets.filter((b) => b.api_key_id === small);
    expect(own.reduce((s, b) => s + b.total_tokens, 0)).toBe(200);
    // An unknown keep changes nothing.
    const none = await getJson<SourcesResponse>(
      t.app,
      '/api/auth/admin/usage/sources?top=1&keep=nope',
      admin.key,
    );
    expect(none.body.other_series).toBe(7);
  });

  it("the caller's own endpoint folds per source and never shows legacy", async () => {
    const { body } = await getJson<SourcesResponse>(t.app, '/api/auth/usage/sources?top=1', alice.key);
    expect(body.buckets.filter((b) => !b.other).every((b) => b.api_key_id === keys[4]?.id)).toBe(true);
    expect(body.buckets.some((b) => b.source === 'legacy')).toBe(false);
    expect(body.other_series).toBe(5);
    expect(body.truncated).toBe(false);
    expect(body.totals.by_user_source).toBeUndefined();
    expect(body.source_last_used?.web).toBe(new Date(NOW - 3 * HOUR).toISOString());
  });

  it('compare=previous adds the totals of the window of the same length before this one', async () => {
    const month = await getJson<SourcesResponse>(
      t.app,
      `/api/auth/admin/usage/sources?compare=previous&user_id=${aliceId}`,
      admin.key,
    );
    expect(month.body.previous).toEqual({
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 1000,
      request_count: 1,
      cost: 0,
      // The test rows carry no price.
      unpriced_requests: 1,
    });
    const day = await getJson<UsageResponse>(t.app, '/api/auth/usage?period=day&compare=previous', alice.key);
    // The day window is 25 whole hours from 12:00 yesterday; the 25 before it hold the 300-token row
    // 30 h ago and the five key rows 48 h ago (1,500).
    expect(day.body.previous?.total_tokens).toBe(1800);
    expect(day.body.previous?.request_count).toBe(6);
    const all = await getJson<UsageResponse>(
      t.app,
      '/api/auth/admin/usage?period=all&compare=previous',
      admin.key,
    );
    expect(all.body.previous).toBeNull();
  });

  it('bad view parameters are 400s naming the field', async () => {
    for (const query of ['top=0', 'top=abc', 'top=51', 'compare=last']) {
      const { status, body } = await getJson<{ error: string }>(
        t.app,
        `/api/auth/admin/usage/sources?${query}`,
        admin.key,
      );
      expect(status, query).toBe(400);
      expect(JSON.stringify(body), query).toContain(query.split('=')[0]);
    }
  });

  it('compresses /api/auth JSON for clients that accept it, never the proxy paths (/v1, Ollama /api)', async () => {
    const url = '/api/auth/admin/usage/sources?period=all';
    const plain = await t.app.inject({
      method: 'GET',
      url,
      headers: { authorization: `Bearer ${admin.key}` },
    });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.rawPayload.length).toBeGreaterThan(1024);
    for (const [accept, encoding, decode] of [
      ['gzip, deflate, br', 'br', zlib.brotliDecompressSync],
      ['gzip', 'gzip', zlib.gunzipSync],
      ['br;q=0, gzip;q=0.5', 'gzip', zlib.gunzipSync],
    ] as const) {
      const response = await t.app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${admin.key}`, 'accept-encoding': accept },
      });
      expect(response.headers['content-encoding'], accept).toBe(encoding);
      expect(response.headers.vary).toContain('accept-encoding');
      expect(response.rawPayload.length).toBeLessThan(plain.rawPayload.length);
      expect(decode(response.rawPayload).toString()).toBe(plain.body);
    }
    const identity = await t.app.inject({
      method: 'GET',
      url,
      headers: { authorization: `Bearer ${admin.key}`, 'accept-encoding': 'identity' },
    });
    expect(identity.headers['content-encoding']).toBeUndefined();
    // /v1/usage answers JSON of the same kind on the proxy's path: left alone.
    const v1 = await t.app.inject({
      method: 'GET',
      url: '/v1/usage?period=all&granularity=hour',
      headers: { authorization: `Bearer ${keys[4]?.key}`, 'accept-encoding': 'gzip, br' },
    });
    expect(v1.statusCode).toBe(200);
    expect(v1.rawPayload.length).toBeGreaterThan(1024);
    expect(v1.headers['content-encoding']).toBeUndefined();
    expect(v1.headers.vary ?? '').not.toContain('accept-encoding');
    // Ollama's API shares the /api prefix but is the proxy: its routes are not hooked either.
    const tags = await t.app.inject({
      method: 'GET',
      url: '/api/tags',
      headers: { authorization: `Bearer ${keys[4]?.key}`, 'accept-encoding': 'gzip, br' },
    });
    expect(tags.statusCode).toBe(200);
    expect(tags.headers['content-encoding']).toBeUndefined();
    expect(tags.headers.vary ?? '').not.toContain('accept-encoding');
  });
});
