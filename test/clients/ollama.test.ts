import fs from 'node:fs';
import path from 'node:path';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_OLLAMA_VERSION } from '../../src/server/gateway/demo-ollama.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS, makeTempDir } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { FAKE_OLLAMA_VERSION } from '../helpers/fake-ollama.ts';
import {
  FAKE_EMBEDDING_TOKENS,
  FAKE_PROMPT_TOKENS,
  FAKE_REPLY,
  FAKE_REPLY_WORDS,
  type FakeUpstream,
  startFakeUpstream,
} from '../helpers/fake-upstream.ts';
import { countTokens, postAndCut, rowReader, waitForRows } from './support.ts';

const messages = [{ role: 'user', content: 'Say hello' }];

describe.each(DIALECTS)('the ollama client against an Ollama upstream on %s', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let key: { id: string; key: string };
  let revoked: { key: string };
  let userId: string;
  let ollama: Ollama;
  const newRows = rowReader(() => t);

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    // An Ollama root (no /v1): the upstream is `api: ollama`.
    t = await startTestApp({ dialect, settings: { upstreamUrl: upstream.url, upstreamApiKey: 'up-secret' } });
    await t.listen();
    const user = await createUser(t.database.db, { name: 'Olive' });
    userId = user.id;
    key = await createApiKey(t.database.db, { userId, name: 'webui' });
    revoked = await createApiKey(t.database.db, { userId, name: 'old', revokedAt: Date.now() - 1000 });
    ollama = new Ollama({ host: t.baseUrl, headers: { authorization: `Bearer ${key.key}` } });
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  const recorded = (endpoint: string, extra: Record<string, unknown> = {}) => ({
    user_id: userId,
    source: 'apikey',
    api_key_id: key.id,
    api_key_name: 'webui',
    model: 'fake-model',
    endpoint,
    upstream: 'default',
    aborted: 0,
    ...extra,
  });

  it('chat, not streamed: the answer, its counts, one provider row; the upstream gets its own key', async () => {
    const reply = await ollama.chat({ model: 'fake-model', messages, stream: false });
    expect(reply.message.content).toBe(FAKE_REPLY);
    expect(reply.prompt_eval_count).toBe(FAKE_PROMPT_TOKENS);
    expect(reply.eval_count).toBe(FAKE_REPLY_WORDS.length);
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject(
      recorded('/api/chat', {
        prompt_tokens: FAKE_PROMPT_TOKENS,
        completion_tokens: FAKE_REPLY_WORDS.length,
        total_tokens: FAKE_PROMPT_TOKENS + FAKE_REPLY_WORDS.length,
        usage_origin: 'provider',
        stream: 0,
      }),
    );
    const received = upstream.requests.at(-1);
    expect(received?.path).toBe('/api/chat');
    expect(received?.headers.authorization).toBe('Bearer up-secret');
  });

  it('chat, streamed (NDJSON split across reads): every piece, the final counts, one row', async () => {
    let text = '';
    let last: { done: boolean; eval_count?: number } | undefined;
    for await (const part of await ollama.chat({ model: 'fake-model', messages, stream: true })) {
      text += part.message.content;
      last = part;
    }
    expect(text).toBe(FAKE_REPLY);
    expect(last).toMatchObject({ done: true, eval_count: FAKE_REPLY_WORDS.length });
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject(
      recorded('/api/chat', { prompt_tokens: FAKE_PROMPT_TOKENS, usage_origin: 'provider', stream: 1 }),
    );
  });

  it('generate, streamed and not: rows on /api/generate', async () => {
    const whole = await ollama.generate({ model: 'fake-model', prompt: 'Say hello', stream: false });
    expect(whole.response).toBe(FAKE_REPLY);
    let text = '';
    for await (const part of await ollama.generate({
      model: 'fake-model',
      prompt: 'Say hello',
      stream: true,
    })) {
      text += part.response;
    }
    expect(text).toBe(FAKE_REPLY);
    const rows = await newRows();
    expect(rows.map((row) => [row.endpoint, row.stream, row.completion_tokens]).sort()).toEqual([
      ['/api/generate', 0, FAKE_REPLY_WORDS.length],
      ['/api/generate', 1, FAKE_REPLY_WORDS.length],
    ]);
  });

  it('embed reports prompt_eval_count; the legacy embeddings route is estimated', async () => {
    const embedded = await ollama.embed({ model: 'fake-model', input: ['one', 'two'] });
    expect(embedded.embeddings).toHaveLength(2);
    const legacy = await ollama.embeddings({ model: 'fake-model', prompt: 'count these words' });
    expect(legacy.embedding).toEqual([0.1, 0.2, 0.3]);
    const rows = await newRows();
    const byEndpoint = Object.fromEntries(rows.map((row) => [row.endpoint, row]));
    expect(byEndpoint['/api/embed']).toMatchObject(
      recorded('/api/embed', {
        prompt_tokens: FAKE_EMBEDDING_TOKENS,
        completion_tokens: 0,
        usage_origin: 'provider',
        stream: 0,
      }),
    );
    expect(byEndpoint['/api/embeddings']).toMatchObject(
      recorded('/api/embeddings', {
        prompt_tokens: countTokens('count these words'),
        completion_tokens: 0,
        usage_origin: 'estimated',
      }),
    );
  });

  it('a stream without counts is estimated from the prompt and the streamed text', async () => {
    let text = '';
    for await (const part of await ollama.chat({ model: 'fake-no-usage', messages, stream: true })) {
      text += part.message.content;
    }
    expect(text).toBe(FAKE_REPLY);
    const rows = await newRows();
    expect(rows[0]).toMatchObject({
      model: 'fake-no-usage',
      usage_origin: 'estimated',
      prompt_tokens: countTokens('Say hello'),
      completion_tokens: countTokens(FAKE_REPLY),
    });
  });

  it('a stream cut by the client after 3 chunks is recorded once, aborted and estimated', async () => {
    const body = { model: 'fake-long', messages: [{ role: 'user', content: 'go on' }] };
    const seen = await postAndCut(
      `${t.baseUrl}/api/chat`,
      { authorization: `Bearer ${key.key}` },
      body,
      '\n',
      3,
    );
    expect(seen.split('\n').length).toBeGreaterThanOrEqual(4);
    const received = await upstream.waitForRequestEnd((r) => r.body?.model === 'fake-long');
    expect(received.clientClosed).toBe(true);
    const rows = await waitForRows(newRows);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      ...recorded('/api/chat', { model: 'fake-long' }),
      aborted: 1,
      usage_origin: 'estimated',
      stream: 1,
      prompt_tokens: countTokens('go on'),
    });
    expect(rows[0]!.completion_tokens).toBeGreaterThanOrEqual(3);
    expect(rows[0]!.completion_tokens).toBeLessThan(200);
    expect(await newRows()).toHaveLength(0);
  });

  it('list, show and version answer from the upstream and record nothing', async () => {
    const list = await ollama.list();
    expect(list.models.map((model) => model.name).sort()).toEqual(['fake-model', 'fake-other']);
    const shown = await ollama.show({ model: 'fake-model' });
    expect(shown.modelfile).toBe('FROM fake-model');
    const version = await fetch(`${t.baseUrl}/api/version`, {
      headers: { authorization: `Bearer ${key.key}` },
    });
    expect(await version.json()).toEqual({ version: FAKE_OLLAMA_VERSION });
    for (const url of ['/api/tags', '/api/version']) {
      const response = await fetch(`${t.baseUrl}${url}`, { headers: { authorization: `Bearer ${key.key}` } });
      expect(Number(response.headers.get('x-keytally-overhead-ms')), url).toBeGreaterThanOrEqual(0);
    }
    expect(await newRows()).toHaveLength(0);
  });

  it("the client's view of a revoked key, a missing key and an upstream error: Ollama's error text", async () => {
    const refused = new Ollama({ host: t.baseUrl, headers: { authorization: `Bearer ${revoked.key}` } });
    await expect(refused.chat({ model: 'fake-model', messages })).rejects.toMatchObject({
      status_code: 401,
      error: 'API key revoked',
    });
    const anonymous = new Ollama({ host: t.baseUrl });
    await expect(anonymous.list()).rejects.toMatchObject({
      status_code: 401,
      error: 'An authentication key is required',
    });
    await expect(ollama.chat({ model: 'fake-500', messages, stream: false })).rejects.toMatchObject({
      status_code: 500,
      error: 'the fake upstream had an internal error',
    });
    expect(await newRows()).toHaveLength(0);
  });

  it('OpenAI requests to an Ollama root go to its /v1', async () => {
    const response = await fetch(`${t.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-model', messages }),
    });
    expect(response.status).toBe(200);
    expect(upstream.requests.at(-1)?.path).toBe('/v1/chat/completions');
    expect(await newRows()).toHaveLength(1);
  });
});

describe.each(DIALECTS)('Ollama routes with several upstreams on %s', (dialect) => {
  let ollamaUpstream: FakeUpstream;
  let openAiUpstream: FakeUpstream;
  let t: TestApp;
  let ollama: Ollama;

  beforeAll(async () => {
    ollamaUpstream = await startFakeUpstream({ models: ['llama-a', 'llama-b:latest', 'hidden'] });
    openAiUpstream = await startFakeUpstream();
    const dir = makeTempDir();
    const file = path.join(dir, 'keytally.yaml');
    fs.writeFileSync(
      file,
      [
        'upstreams:',
        '  - name: local-ollama',
        `    url: ${ollamaUpstream.url}`,
        '    api: ollama',
        '    models: [llama-a, llama-b, llama-configured]',
        '  - name: hosted',
        `    url: ${openAiUpstream.baseUrl}`,
        '    models: [gpt-fake]',
      ].join('\n'),
    );
    t = await startTestApp({ dialect, settings: { configFile: file, apiKeys: 'legacy-secret' } });
    await t.listen();
    ollama = new Ollama({ host: t.baseUrl, headers: { authorization: 'Bearer legacy-secret' } });
  });
  afterAll(async () => {
    await t?.close();
    await ollamaUpstream?.close();
    await openAiUpstream?.close();
  });

  it("/api/tags lists the Ollama upstreams' models it serves, and the configured ones", async () => {
    const list = await ollama.list();
    // `llama-b` in the config is the upstream's `llama-b:latest` (Ollama's implied tag).
    expect(list.models.map((model) => model.name).sort()).toEqual([
      'llama-a',
      'llama-b:latest',
      'llama-configured',
    ]);
  });

  it('a model of an OpenAI upstream or an unknown one is a 404 the Ollama client shows', async () => {
    await expect(ollama.chat({ model: 'gpt-fake', messages })).rejects.toMatchObject({
      status_code: 404,
      error: expect.stringContaining('speaks OpenAI'),
    });
    await expect(ollama.chat({ model: 'nope', messages })).rejects.toMatchObject({
      status_code: 404,
      error: expect.stringContaining('The model "nope" does not exist here'),
    });
    const missing = await fetch(`${t.baseUrl}/api/chat`, {
      method: 'POST',
      headers: { authorization: 'Bearer legacy-secret', 'content-type': 'application/json' },
      body: JSON.stringify({ messages }),
    });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ error: 'model: is required (a model id string)' });
    expect(openAiUpstream.requests).toHaveLength(0);
  });

  it('chat routes to the Ollama upstream, with or without the :latest tag, and records its name', async () => {
    for (const model of ['llama-a', 'llama-b:latest', 'llama-a:latest']) {
      const reply = await ollama.chat({ model, messages, stream: false });
      expect(reply.message.content).toBe(FAKE_REPLY);
    }
    await t.recorder.flushNow();
    const rows = await t.database.db.kysely.selectFrom('usage_records').selectAll().execute();
    expect(rows.map((row) => row.model).sort()).toEqual(['llama-a', 'llama-a:latest', 'llama-b:latest']);
    for (const row of rows) expect(row).toMatchObject({ upstream: 'local-ollama', source: 'legacy' });
  });
});

describe.each(DIALECTS)('the ollama client against the demo model on %s', (dialect) => {
  let t: TestApp;
  let ollama: Ollama;
  const newRows = rowReader(() => t);

  beforeAll(async () => {
    t = await startTestApp({ dialect, settings: { apiKeys: 'legacy-secret' } });
    await t.listen();
    ollama = new Ollama({ host: t.baseUrl, headers: { authorization: 'Bearer legacy-secret' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lists demo, chats streamed and not, embeds; each inference is one provider row', async () => {
    expect((await ollama.list()).models.map((model) => model.name)).toEqual(['demo']);
    const whole = await ollama.chat({ model: 'demo', messages, stream: false });
    expect(whole.message.content).toContain("keytally's built-in demo model");
    let streamed = '';
    for await (const part of await ollama.chat({ model: 'demo', messages, stream: true })) {
      streamed += part.message.content;
    }
    expect(streamed).toBe(whole.message.content);
    const embedded = await ollama.embed({ model: 'demo', input: 'hello' });
    expect(embedded.embeddings[0]).toHaveLength(16);
    const rows = await newRows();
    expect(rows.map((row) => [row.endpoint, row.stream, row.usage_origin]).sort()).toEqual([
      ['/api/chat', 0, 'provider'],
      ['/api/chat', 1, 'provider'],
      ['/api/embed', 0, 'provider'],
    ]);
    expect((await ollama.show({ model: 'demo' })).capabilities).toContain('completion');
    const version = await fetch(`${t.baseUrl}/api/version`, {
      headers: { authorization: 'Bearer legacy-secret' },
    });
    expect(await version.json()).toEqual({ version: DEMO_OLLAMA_VERSION });
    await expect(
      ollama.chat({ model: 'demo', messages: [{ content: 'no role' }] as never }),
    ).rejects.toMatchObject({
      status_code: 400,
      error: 'messages[0]: must be an object with a string role',
    });
    expect(await newRows()).toHaveLength(0);
    const chatRow = rows.find((row) => row.endpoint === '/api/chat');
    expect(chatRow?.completion_tokens).toBe(countTokens(whole.message.content));
    expect(chatRow?.prompt_tokens).toBe(countTokens('Say hello'));
  });
});
