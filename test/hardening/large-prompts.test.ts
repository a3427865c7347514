import { encode } from 'gpt-tokenizer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTextTokens, estimatePromptTokens } from '../../src/server/gateway/tokens.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import type { FakeUpstream } from '../helpers/fake-upstream.ts';
import { startAppWithUpstream } from './support.ts';

const WORDS = 'the quick brown fox jumps over the lazy dog, then 12345 more; ';
const PROMPT_20MB = WORDS.repeat(Math.ceil(20_000_000 / WORDS.length));

describe('token estimates of large prompts (issue 11, item 7)', () => {
  it('yield to the event loop while they count', async () => {
    await countTextTokens('load the encoder first');
    let turns = 0;
    let finished = false;
    const tick = () => {
      if (finished) return;
      turns += 1;
      setImmediate(tick);
    };
    setImmediate(tick);
    const tokens = await estimatePromptTokens({ messages: [{ role: 'user', content: PROMPT_20MB }] });
    finished = true;
    // Other callbacks ran while the 20 MB prompt was counted, not only after it.
    expect(turns).toBeGreaterThan(10);
    expect(tokens).toBeGreaterThan(1_000_000);
  });

  it('count ordinary text exactly like one pass over it', async () => {
    const text = `${'word '.repeat(30_000)}\n\n  ${'é🙂 <|endoftext|> '.repeat(20_000)}${'中文文本'.repeat(50)}`;
    expect(await countTextTokens(text)).toBe(encode(text, { disallowedSpecial: new Set() }).length);
  });

  it('count a long run without whitespace in bounded pieces (one 70,000-character word took > 30 s)', async () => {
    const tokens = await countTextTokens('x'.repeat(1_000_000));
    expect(tokens).toBeGreaterThan(1_000_000 / 256);
  });
});

describe.each(DIALECTS)('large prompts through the proxy on %s (issue 11, item 7)', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let key = '';

  beforeAll(async () => {
    ({ upstream, t, key } = await startAppWithUpstream({
      dialect,
      settings: { maxBodyBytes: '30000000' },
    }));
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  it('/healthz keeps answering while a 20 MB prompt is estimated', async () => {
    const model = 'fake-no-usage-large';
    let upstreamDone = false;
    void upstream
      .waitForRequestEnd((r) => r.body?.model === model)
      .then(() => {
        upstreamDone = true;
      });
    let answered = false;
    const big = fetch(`${t.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: PROMPT_20MB }] }),
    }).then(async (response) => {
      await response.arrayBuffer();
      answered = true;
      return response.status;
    });
    // /healthz answers counted between the upstream's answer and keytally's: the estimate's window.
    let duringEstimate = 0;
    while (!answered) {
      const health = await fetch(`${t.baseUrl}/healthz`);
      expect(health.status).toBe(200);
      await health.arrayBuffer();
      if (upstreamDone && !answered) duringEstimate += 1;
    }
    expect(await big).toBe(200);
    expect(duringEstimate).toBeGreaterThan(3);
    await t.recorder.flushNow();
    const row = await t.database.db.kysely
      .selectFrom('usage_records')
      .selectAll()
      .where('model', '=', model)
      .executeTakeFirstOrThrow();
    expect(row.usage_origin).toBe('estimated');
    expect(row.prompt_tokens).toBeGreaterThan(1_000_000);
  });

  it('a body over KEYTALLY_MAX_BODY_BYTES answers 413 in the OpenAI shape', async () => {
    const small = await startTestApp({
      dialect,
      database: t.database,
      settings: { upstreamUrl: upstream.baseUrl, maxBodyBytes: '2048' },
    });
    try {
      const response = await small.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        payload: JSON.stringify({
          model: 'fake-model',
          messages: [{ role: 'user', content: 'x'.repeat(4096) }],
        }),
      });
      expect(response.statusCode).toBe(413);
      expect(response.json()).toEqual({
        error: { message: 'request body is too large', type: 'invalid_request_error', code: null },
      });
    } finally {
      await small.close();
    }
  });
});
