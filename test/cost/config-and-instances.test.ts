import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/server/config.ts';
import { loadUpstreamsFile } from '../../src/server/gateway/upstream-config.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, DIALECTS, makeTempDir, type TestDatabase } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { HAS_POSTGRES_SERVER } from '../helpers/postgres.ts';
import { startUsageUpstream, type UsageUpstream } from './usage-upstream.ts';

const USAGE = { prompt_tokens: 1000, completion_tokens: 1000, total_tokens: 2000 };

async function callAndReadRow(t: TestApp, key: string, model: string) {
  const response = await t.app.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${key}` },
    payload: { model, messages: [{ role: 'user', content: 'hi' }] },
  });
  expect(response.statusCode).toBe(200);
  await t.recorder.flushNow();
  const row = await t.database.db.kysely
    .selectFrom('usage_records')
    .select(['cost_nanos', 'price_source'])
    .where('model', '=', model)
    .orderBy('created_at', 'desc')
    .executeTakeFirstOrThrow();
  return { cost: row.cost_nanos === null ? null : Number(row.cost_nanos), source: row.price_source };
}

describe.each(DIALECTS)('prices from the YAML config and upstreams[].provider on %s', (dialect) => {
  let upstream: UsageUpstream;
  let t: TestApp;
  let key: string;

  beforeAll(async () => {
    upstream = await startUsageUpstream();
    for (const model of ['gpt-4o-mini', 'local-yaml', 'gpt-4o']) upstream.usage.set(model, USAGE);
    const dir = makeTempDir();
    const file = path.join(dir, 'keytally.yaml');
    fs.writeFileSync(
      file,
      [
        'upstreams:',
        '  - name: cloud',
        `    url: ${upstream.baseUrl}`,
        '    provider: openai',
        '    models: [gpt-4o-mini]',
        '  - name: local',
        `    url: ${upstream.baseUrl}`,
        '    provider: none',
        '    models: [local-yaml, gpt-4o]',
        'prices:',
        '  - model: "local-*"',
        '    input: 0.5',
        '    output: 1.5',
      ].join('\n'),
    );
    t = await startTestApp({ dialect, settings: { configFile: file, apiKeys: 'legacy-secret' } });
    const user = await createUser(t.database.db);
    key = (await createApiKey(t.database.db, { userId: user.id })).key;
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  it("prices the configured provider's models from the catalogue and YAML prices as admin prices", async () => {
    // gpt-4o-mini at OpenAI: 1000 × 150,000 + 1000 × 600,000 pico-USD.
    expect(await callAndReadRow(t, key, 'gpt-4o-mini')).toEqual({ cost: 750_000, source: 'catalog' });
    // local-*: 1000 × 500,000 + 1000 × 1,500,000 pico-USD.
    expect(await callAndReadRow(t, key, 'local-yaml')).toEqual({ cost: 2_000_000, source: 'admin' });
    // provider: none: a model the catalogue knows is still not priced from it.
    expect(await callAndReadRow(t, key, 'gpt-4o')).toEqual({ cost: null, source: 'none' });
    const list = await t.app.inject({
      method: 'GET',
      url: '/api/auth/admin/prices',
      headers: { authorization: 'Bearer legacy-secret' },
    });
    expect(list.json().prices).toEqual([
      expect.objectContaining({ model: 'local-*', input: 0.5, output: 1.5, origin: 'config' }),
    ]);
  });

  it('refuses an unknown provider and a bad price with the field named', () => {
    const dir = makeTempDir();
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, `upstreams:\n  - name: a\n    url: http://127.0.0.1:1/v1\n    provider: acme\n`);
    expect(() => loadUpstreamsFile(bad)).toThrow(ConfigError);
    expect(() => loadUpstreamsFile(bad)).toThrow(/provider "acme"/);
    fs.writeFileSync(
      bad,
      `upstreams:\n  - name: a\n    url: http://127.0.0.1:1/v1\nprices:\n  - model: x\n    input: -1\n    output: 1\n`,
    );
    expect(() => loadUpstreamsFile(bad)).toThrow(/prices\.0\.input/);
  });
});

// NOTIFY between connections needs a PostgreSQL server (HAS_POSTGRES_SERVER).
describe.skipIf(!HAS_POSTGRES_SERVER)(
  'a price change reaches another instance on the same PostgreSQL database within 1 s (needs a PostgreSQL server)',
  () => {
    let upstream: UsageUpstream;
    let database: TestDatabase;
    let a: TestApp;
    let b: TestApp;
    let key: string;

    beforeAll(async () => {
      upstream = await startUsageUpstream();
      upstream.usage.set('shared-model', USAGE);
      database = await createTestDatabase('postgres');
      const settings = { upstreamUrl: upstream.baseUrl, apiKeys: 'legacy-secret' };
      a = await startTestApp({ dialect: 'postgres', database, settings });
      b = await startTestApp({ dialect: 'postgres', database, settings });
      const user = await createUser(database.db);
      key = (await createApiKey(database.db, { userId: user.id })).key;
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await database?.close();
      await upstream?.close();
    });

    it('B prices with the price added through A', async () => {
      // B has resolved the model already (cached as unpriced).
      expect((await callAndReadRow(b, key, 'shared-model')).source).toBe('none');
      const put = await a.app.inject({
        method: 'PUT',
        url: '/api/auth/admin/prices',
        headers: { authorization: 'Bearer legacy-secret' },
        payload: { model: 'shared-model', input: 1, output: 1, effective_from: '2020-01-01T00:00:00Z' },
      });
      expect(put.statusCode).toBe(200);
      // decisions.md section 4's bound for credentials, which prices follow: within 1 s.
      await expect
        .poll(async () => (await callAndReadRow(b, key, 'shared-model')).source, {
          timeout: 1000,
          interval: 50,
        })
        .toBe('admin');
    });
  },
);
