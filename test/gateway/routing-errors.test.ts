import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/server/config.ts';
import { loadUpstreamsFile } from '../../src/server/gateway/upstream-config.ts';
import { yamlFiles } from '../clients/support.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS, makeTempDir } from '../helpers/db.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { freePort } from '../helpers/process.ts';

const LEGACY = { authorization: 'Bearer legacy-secret', 'content-type': 'application/json' };
const chat = (model: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('KEYTALLY_CONFIG validation', () => {
  const { dir, write } = yamlFiles();

  it('accepts several upstreams with their models', () => {
    const file = write(
      'upstreams:\n  - name: a\n    url: http://127.0.0.1:1/v1\n    models: [x]\n  - name: b\n    url: http://127.0.0.1:2/v1\n',
    );
    expect(loadUpstreamsFile(file).upstreams.map((u) => u.name)).toEqual(['a', 'b']);
  });

  it.each([
    ['upstreams: []\n', 'upstreams: must list at least one upstream'],
    ['upstreams:\n  - name: a\n    url: ftp://x\n', 'upstreams.0.url: must be an http:// or https:// URL'],
    ['upstreams:\n  - url: http://x\n', 'upstreams.0.name'],
    ['upstreams:\n  - name: a\n    url: http://x\n  - name: a\n    url: http://y\n', 'used twice'],
    ['upstreams: [oops\n', 'not valid YAML'],
  ])('rejects %j naming the field', (text, message) => {
    const file = write(text);
    expect(() => loadUpstreamsFile(file)).toThrow(ConfigError);
    expect(() => loadUpstreamsFile(file)).toThrow(message);
  });

  it('names a missing file', () => {
    expect(() => loadUpstreamsFile(path.join(dir, 'missing.yaml'))).toThrow(/KEYTALLY_CONFIG: cannot read/);
  });
});

describe.each(DIALECTS)('routing and upstream errors on %s', (dialect) => {
  let a: FakeUpstream;
  let b: FakeUpstream;
  let t: TestApp;
  let unreachable: TestApp;

  beforeAll(async () => {
    a = await startFakeUpstream({ slowMs: 3000, models: ['fake-model', 'fake-429'] });
    b = await startFakeUpstream({ models: ['b-model', 'b-unlisted'] });
    const dir = makeTempDir();
    const file = path.join(dir, 'upstreams.yaml');
    fs.writeFileSync(
      file,
      [
        'upstreams:',
        '  - name: alpha',
        `    url: ${a.baseUrl}`,
        '    api_key: alpha-secret',
        '    models: [fake-model, fake-429, fake-500, fake-slow, fake-break]',
        '    timeout_ms: 300',
        '  - name: beta',
        `    url: ${b.baseUrl}`,
        '    models: [b-model]',
      ].join('\n'),
    );
    t = await startTestApp({ dialect, settings: { configFile: file, apiKeys: 'legacy-secret' } });
    const port = await freePort();
    unreachable = await startTestApp({
      dialect,
      database: t.database,
      settings: {
        upstreamUrl: `http://127.0.0.1:${port}/v1`,
        apiKeys: 'legacy-secret',
        dataDir: makeTempDir(),
      },
    });
  });
  afterAll(async () => {
    await unreachable?.close();
    await t?.close();
    await a?.close();
    await b?.close();
  });

  const post = (app: TestApp, model: string, extra: Record<string, unknown> = {}) =>
    app.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: LEGACY,
      payload: chat(model, extra),
    });
  const rowCount = async () => {
    await t.recorder.flushNow();
    const row = await t.database.db.kysely
      .selectFrom('usage_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  };

  it('routes by model to the upstream that lists it, with that upstream key', async () => {
    const before = await rowCount();
    expect((await post(t, 'fake-model')).statusCode).toBe(200);
    expect((await post(t, 'b-model')).statusCode).toBe(200);
    expect(a.requests.at(-1)?.headers.authorization).toBe('Bearer alpha-secret');
    expect(b.requests.at(-1)?.body?.model).toBe('b-model');
    expect(b.requests.at(-1)?.headers.authorization).toBeUndefined();
    expect(await rowCount()).toBe(before + 2);
    const rows = await t.database.db.kysely
      .selectFrom('usage_records')
      .select(['model', 'upstream'])
      .execute();
    expect(rows).toEqual(
      expect.arrayContaining([
        { model: 'fake-model', upstream: 'alpha' },
        { model: 'b-model', upstream: 'beta' },
      ]),
    );
  });

  it('an unknown model is a 404 in the OpenAI shape naming the models', async () => {
    const response = await post(t, 'nope');
    expect(response.statusCode).toBe(404);
    const error = response.json().error;
    expect(error.code).toBe('model_not_found');
    expect(Number(response.headers['x-keytally-overhead-ms'])).toBeGreaterThanOrEqual(0);
    expect(error.message).toContain('"nope"');
    expect(error.message).toContain('"b-model"');
  });

  it('upstream error statuses and bodies pass through and record nothing', async () => {
    const before = await rowCount();
    const limited = await post(t, 'fake-429');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('7');
    expect(limited.json().error.message).toBe('Rate limit reached for fake-429');
    const failed = await post(t, 'fake-500');
    expect(failed.statusCode).toBe(500);
    expect(failed.json().error.message).toBe('The fake upstream had an internal error');
    expect(failed.headers['x-keytally-overhead-ms']).toBeDefined();
    expect(await rowCount()).toBe(before);
  });

  it('an upstream slower than its timeout is a 504', async () => {
    const response = await post(t, 'fake-slow');
    expect(response.statusCode).toBe(504);
    expect(response.json().error).toMatchObject({ code: 'upstream_timeout', type: 'upstream_error' });
    expect(response.json().error.message).toContain('alpha');
    // The wait that ran out is the upstream's own, and so is the setting that raises it.
    expect(response.json().error.message).toContain('(300 ms)');
    expect(response.json().error.message).toContain(
      'raise timeout_ms of the upstream "alpha" in KEYTALLY_CONFIG',
    );
  });

  it('an unreachable upstream is a 502 saying where it looked', async () => {
    const response = await post(unreachable, 'anything');
    expect(response.statusCode).toBe(502);
    const error = response.json().error;
    expect(error.code).toBe('upstream_unreachable');
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain('KEYTALLY_UPSTREAM_URL');
  });

  it('a stream the upstream breaks mid-way ends for the client and is recorded as aborted', async () => {
    await t.listen();
    const response = await fetch(`${t.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: LEGACY,
      body: chat('fake-break', { stream: true }),
    });
    expect(response.status).toBe(200);
    await response.text().catch(() => '');
    // The server records the broken stream when it notices the upstream's error, which on a loaded
    // machine can be well after the client saw the end: poll (bounded) rather than count loop turns.
    let rows: { aborted: number }[] = [];
    const deadline = Date.now() + 15_000;
    while (rows.length === 0 && Date.now() < deadline) {
      await t.recorder.flushNow();
      rows = await t.database.db.kysely
        .selectFrom('usage_records')
        .select(['aborted'])
        .where('model', '=', 'fake-break')
        .execute();
      if (rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(rows).toEqual([{ aborted: 1 }]);
  });

  it('/v1/models is the union of the upstream lists, restricted to what each serves', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/v1/models', headers: LEGACY });
    expect(response.statusCode).toBe(200);
    const ids = (response.json().data as { id: string }[]).map((m) => m.id).sort();
    expect(ids).toEqual(['b-model', 'fake-429', 'fake-500', 'fake-break', 'fake-model', 'fake-slow']);
    const bare = await t.app.inject({ method: 'GET', url: '/models', headers: LEGACY });
    expect(bare.statusCode).toBe(200);
  });

  it('/metrics needs an admin and counts requests, tokens and unrecorded reasons', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const response = await t.app.inject({ method: 'GET', url: '/metrics', headers: LEGACY });
    expect(response.statusCode).toBe(200);
    const text = response.body;
    expect(text).toMatch(/keytally_usage_unrecorded_total\{reason="upstream_status"\} 2/);
    expect(text).toMatch(/keytally_usage_unrecorded_total\{reason="unknown_model"\} 1/);
    expect(text).toMatch(/keytally_usage_unrecorded_total\{reason="upstream_timeout"\} 1/);
    expect(text).toMatch(
      /keytally_requests_total\{route="\/v1\/chat\/completions",status="429",source="legacy"\} 1/,
    );
    expect(text).toMatch(/keytally_tokens_total\{source="legacy",model="fake-model",kind="prompt"\} \d+/);
    expect(text).toContain('keytally_recorder_queue_depth');
    expect(text).toContain('keytally_recorder_journal_bytes');
    expect(text).toMatch(/keytally_recorder_rows_written_total \d+/);
    expect(text).toContain('keytally_recorder_flush_duration_seconds_bucket');
  });
});

describe("upstream timeouts: the upstream's own timeout_ms, else KEYTALLY_UPSTREAM_TIMEOUT_MS", () => {
  let slow: FakeUpstream;
  let hung: http.Server;
  let patient: TestApp;
  let global: TestApp;

  beforeAll(async () => {
    // Past undici's timer granularity (a 300-ms wait fires within ~1 s).
    slow = await startFakeUpstream({ slowMs: 2500 });
    // An Ollama upstream that never answers, with a wait far longer than the test's.
    hung = http.createServer(() => {});
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const hungPort = (hung.address() as { port: number }).port;
    const file = path.join(makeTempDir(), 'upstreams.yaml');
    fs.writeFileSync(
      file,
      [
        'upstreams:',
        '  - name: patient',
        `    url: ${slow.baseUrl}`,
        '    timeout_ms: 5000',
        '  - name: hung',
        `    url: http://127.0.0.1:${hungPort}`,
        '    api: ollama',
        '    models: [hung-model]',
        '    timeout_ms: 600000',
      ].join('\n'),
    );
    // The global wait is shorter than the upstream's answers; the upstream's own is longer.
    patient = await startTestApp({
      dialect: 'sqlite',
      settings: { configFile: file, apiKeys: 'legacy-secret', upstreamTimeoutMs: '300' },
    });
    global = await startTestApp({
      dialect: 'sqlite',
      settings: { upstreamUrl: slow.baseUrl, apiKeys: 'legacy-secret', upstreamTimeoutMs: '300' },
    });
  });
  afterAll(async () => {
    await global?.close();
    await patient?.close();
    await slow?.close();
    hung?.closeAllConnections();
    await new Promise((resolve) => hung?.close(resolve));
  });

  it('/api/tags leaves out an upstream that does not list its tags within 5 s, whatever its timeout_ms', async () => {
    const response = await patient.app.inject({ method: 'GET', url: '/api/tags', headers: LEGACY });
    expect(response.statusCode).toBe(200);
    // Its configured models are still listed; its own tags never came.
    expect(response.json().models.map((tag: { name: string }) => tag.name)).toEqual(['hung-model']);
  }, 20_000);

  it("a request forwarded without a usage row (count_tokens) waits for the upstream's own timeout_ms", async () => {
    const response = await patient.app.inject({
      method: 'POST',
      url: '/v1/messages/count_tokens',
      headers: LEGACY,
      payload: JSON.stringify({ model: 'fake-slow', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.statusCode).toBe(200);
    expect(slow.requests.at(-1)?.path).toBe('/v1/messages/count_tokens');
  });

  const slowChat = (app: TestApp) =>
    app.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: LEGACY,
      payload: chat('fake-slow'),
    });

  it('an inference request waits for it too', async () => {
    expect((await slowChat(patient)).statusCode).toBe(200);
  });

  it('without one, the 504 names KEYTALLY_UPSTREAM_TIMEOUT_MS and its wait', async () => {
    const response = await slowChat(global);
    expect(response.statusCode).toBe(504);
    expect(response.json().error.message).toContain('(300 ms)');
    expect(response.json().error.message).toContain('raise KEYTALLY_UPSTREAM_TIMEOUT_MS');
  });
});
