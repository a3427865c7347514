import http from 'node:http';
import { encode } from 'gpt-tokenizer';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageRecordRow } from '../../src/server/db/schema.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import {
  FAKE_COMPLETION_TOKENS,
  FAKE_EMBEDDING_TOKENS,
  FAKE_PROMPT_TOKENS,
  FAKE_REPLY,
  FAKE_REPLY_WORDS,
  type FakeUpstream,
  startFakeUpstream,
} from '../helpers/fake-upstream.ts';

const LEGACY_HEADERS = { authorization: 'Bearer legacy-secret' };
const count = (text: string) => encode(text, { disallowedSpecial: new Set() }).length;

describe.each(DIALECTS)('usage capture through the proxy on %s', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let key: { id: string; key: string; name: string };
  let userId: string;
  let client: OpenAI;
  const seen = new Set<string>();

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    t = await startTestApp({
      dialect,
      settings: {
        upstreamUrl: upstream.baseUrl,
        upstreamApiKey: 'upstream-secret',
        apiKeys: 'legacy-secret',
      },
    });
    await t.listen();
    const user = await createUser(t.database.db, { name: 'Alice Example' });
    userId = user.id;
    key = await createApiKey(t.database.db, { userId: user.id, name: 'ci-runner' });
    client = new OpenAI({ apiKey: key.key, baseURL: `${t.baseUrl}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  /** The usage rows written since the last call, after an explicit flush. */
  async function newRows(): Promise<UsageRecordRow[]> {
    await t.recorder.flushNow();
    const rows = await t.database.db.kysely.selectFrom('usage_records').selectAll().execute();
    const fresh = rows.filter((row) => !seen.has(row.id));
    for (const row of fresh) seen.add(row.id);
    return fresh;
  }

  const keyFields = () => ({
    user_id: userId,
    user_name: 'Alice Example',
    source: 'apikey',
    api_key_id: key.id,
    api_key_name: 'ci-runner',
    upstream: 'default',
    aborted: 0,
  });

  it('non-streamed chat: one row with the upstream counts; credentials replaced; overhead header', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'fake-model', messages: [{ role: 'user', content: 'Say hello' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(FAKE_REPLY);
    expect(Number(response.headers.get('x-keytally-overhead-ms'))).toBeGreaterThanOrEqual(0);
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      ...keyFields(),
      model: 'fake-model',
      endpoint: '/v1/chat/completions',
      prompt_tokens: FAKE_PROMPT_TOKENS,
      completion_tokens: FAKE_COMPLETION_TOKENS,
      total_tokens: FAKE_PROMPT_TOKENS + FAKE_COMPLETION_TOKENS,
      usage_origin: 'provider',
      stream: 0,
    });
    const received = upstream.requests.at(-1);
    expect(received?.headers.authorization).toBe('Bearer upstream-secret');
    expect(JSON.stringify(received?.headers)).not.toContain(key.key);
    expect(received?.headers.cookie).toBeUndefined();
  });

  it('never forwards x-api-key, xi-api-key or cookies', async () => {
    const response = await fetch(`${t.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': key.key,
        'xi-api-key': 'other-secret',
        cookie: 'session=abc',
        'x-custom': 'kept',
      },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.status).toBe(200);
    const headers = upstream.requests.at(-1)?.headers ?? {};
    expect(headers['x-api-key']).toBeUndefined();
    expect(headers['xi-api-key']).toBeUndefined();
    expect(headers.cookie).toBeUndefined();
    expect(headers['x-custom']).toBe('kept');
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.endpoint).toBe('/chat/completions');
  });

  it('strips hop-by-hop headers, including those the Connection header names', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const request = http.request(`${t.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${key.key}`,
          connection: 'keep-alive, X-Hop',
          'x-hop': 'for this connection only',
          te: 'trailers',
          'x-kept': 'end to end',
        },
      });
      request.on('error', reject);
      request.on('response', (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      });
      request.end(JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hop' }] }));
    });
    expect(status).toBe(200);
    const headers = upstream.requests.at(-1)?.headers ?? {};
    expect(headers['x-hop']).toBeUndefined();
    expect(headers.te).toBeUndefined();
    expect(headers.authorization).toBe('Bearer upstream-secret');
    expect(headers['x-kept']).toBe('end to end');
    expect(await newRows()).toHaveLength(1);
  });

  it('streamed chat with include_usage: the client gets the usage chunk, one provider row', async () => {
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'Stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usageChunks = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usageChunks += 1;
    }
    expect(text).toBe(FAKE_REPLY);
    expect(usageChunks).toBe(1);
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      ...keyFields(),
      model: 'fake-model',
      prompt_tokens: FAKE_PROMPT_TOKENS,
      completion_tokens: FAKE_COMPLETION_TOKENS,
      usage_origin: 'provider',
      stream: 1,
    });
  });

  it('streamed chat without include_usage: keytally asks upstream, strips the usage chunk, records it', async () => {
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'Stream without usage' }],
      stream: true,
    });
    let text = '';
    let usageChunks = 0;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage || chunk.choices.length === 0) usageChunks += 1;
    }
    expect(text).toBe(FAKE_REPLY);
    expect(chunks).toBe(FAKE_REPLY_WORDS.length + 1);
    expect(usageChunks).toBe(0);
    expect(upstream.requests.at(-1)?.body?.stream_options).toEqual({ include_usage: true });
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      ...keyFields(),
      prompt_tokens: FAKE_PROMPT_TOKENS,
      completion_tokens: FAKE_COMPLETION_TOKENS,
      usage_origin: 'provider',
      stream: 1,
    });
  });

  it('a streamed answer carries the request id, its type and the overhead, and is counted in /metrics', async () => {
    const counted = async () => {
      const metrics = await fetch(`${t.baseUrl}/metrics`, { headers: LEGACY_HEADERS });
      const line =
        /keytally_requests_total\{route="\/v1\/chat\/completions",status="200",source="apikey"\} (\d+)/;
      return Number(line.exec(await metrics.text())?.[1] ?? 0);
    };
    const before = await counted();
    const response = await fetch(`${t.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key.key}`,
        'content-type': 'application/json',
        'x-request-id': 'stream-7',
      },
      body: JSON.stringify({
        model: 'fake-model',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('stream-7');
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(Number(response.headers.get('x-keytally-overhead-ms'))).toBeGreaterThanOrEqual(0);
    expect(await response.text()).toMatch(/data: \[DONE\]\n\n$/);
    // Counted by the onResponse hook once the response has finished (the relay writes it itself).
    await expect.poll(counted).toBe(before + 1);
    expect(await newRows()).toHaveLength(1);
  });

  it('upstream ignoring include_usage: the row is estimated within 2 tokens of the tokenizer', async () => {
    const prompt = 'Count the tokens of this prompt, please, including the punctuation!';
    const stream = await client.chat.completions.create({
      model: 'fake-no-usage',
      messages: [{ role: 'user', content: prompt }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.usage_origin).toBe('estimated');
    expect(Math.abs(row.prompt_tokens - count(prompt))).toBeLessThanOrEqual(2);
    expect(Math.abs(row.completion_tokens - count(text))).toBeLessThanOrEqual(2);
    expect(row.total_tokens).toBe(row.prompt_tokens + row.completion_tokens);
  });

  it('completions (streamed) and embeddings each give one row', async () => {
    const stream = await client.completions.create({ model: 'fake-model', prompt: 'Once', stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(FAKE_REPLY);
    const embedding = await client.embeddings.create({ model: 'fake-other', input: 'embed me' });
    expect(embedding.data).toHaveLength(1);
    const rows = await newRows();
    expect(rows).toHaveLength(2);
    const byEndpoint = Object.fromEntries(rows.map((row) => [row.endpoint, row]));
    expect(byEndpoint['/v1/completions']).toMatchObject({
      ...keyFields(),
      prompt_tokens: FAKE_PROMPT_TOKENS,
      completion_tokens: FAKE_COMPLETION_TOKENS,
      stream: 1,
    });
    expect(byEndpoint['/v1/embeddings']).toMatchObject({
      ...keyFields(),
      model: 'fake-other',
      prompt_tokens: FAKE_EMBEDDING_TOKENS,
      completion_tokens: 0,
      total_tokens: FAKE_EMBEDDING_TOKENS,
      usage_origin: 'provider',
      stream: 0,
    });
  });

  it('Responses, non-streamed and streamed: input/output tokens recorded', async () => {
    const response = await client.responses.create({ model: 'fake-model', input: 'Respond' });
    expect(response.output_text).toBe(FAKE_REPLY);
    const stream = await client.responses.create({
      model: 'fake-model',
      input: 'Respond streaming',
      stream: true,
    });
    let text = '';
    for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta;
    expect(text).toBe(FAKE_REPLY);
    const rows = await newRows();
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatchObject({
        ...keyFields(),
        model: 'fake-model',
        endpoint: '/v1/responses',
        prompt_tokens: FAKE_PROMPT_TOKENS,
        completion_tokens: FAKE_COMPLETION_TOKENS,
        total_tokens: FAKE_PROMPT_TOKENS + FAKE_COMPLETION_TOKENS,
        usage_origin: 'provider',
      });
    }
    expect(rows.map((row) => row.stream).sort()).toEqual([0, 1]);
  });

  it('Anthropic Messages, non-streamed and streamed (x-api-key): message_start + cumulative message_delta', async () => {
    const post = (stream: boolean) =>
      fetch(`${t.baseUrl}/v1/messages`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-api-key': key.key,
          'anthropic-version': '2023-06-01',
        },
        body: JSON.stringify({
          model: 'fake-model',
          max_tokens: 64,
          stream,
          messages: [{ role: 'user', content: 'Hello Claude' }],
        }),
      });
    const plain = await post(false);
    expect(plain.status).toBe(200);
    expect(((await plain.json()) as { content: { text: string }[] }).content[0]?.text).toBe(FAKE_REPLY);
    const streamed = await post(true);
    expect(streamed.headers.get('content-type')).toContain('text/event-stream');
    const body = await streamed.text();
    expect(body).toContain('event: message_stop');
    expect(upstream.requests.at(-1)?.headers['anthropic-version']).toBe('2023-06-01');
    expect(upstream.requests.at(-1)?.headers['x-api-key']).toBe('upstream-secret');
    const rows = await newRows();
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatchObject({
        ...keyFields(),
        endpoint: '/v1/messages',
        prompt_tokens: FAKE_PROMPT_TOKENS,
        completion_tokens: FAKE_COMPLETION_TOKENS,
        total_tokens: FAKE_PROMPT_TOKENS + FAKE_COMPLETION_TOKENS,
        usage_origin: 'provider',
      });
    }
  });

  it('a legacy key records source legacy with the synthetic user and no key', async () => {
    const legacy = new OpenAI({ apiKey: 'legacy-secret', baseURL: `${t.baseUrl}/v1`, maxRetries: 0 });
    await legacy.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }] });
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      user_id: 'legacy-api-key',
      user_name: 'API Key User',
      source: 'legacy',
      api_key_id: null,
      api_key_name: '',
    });
  });

  it('a client disconnecting after 3 chunks aborts the upstream request; the row is aborted', async () => {
    // node:http so that destroying the request closes exactly this socket.
    await new Promise<void>((resolve, reject) => {
      const request = http.request(`${t.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key.key}` },
      });
      request.on('error', () => resolve());
      request.on('response', (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if ((text.match(/\n\n/g) ?? []).length >= 3) {
            request.destroy();
            resolve();
          }
        });
        response.on('error', () => resolve());
        response.on('end', () => reject(new Error('the stream ended before the client disconnected')));
      });
      request.end(
        JSON.stringify({ model: 'fake-long', stream: true, messages: [{ role: 'user', content: 'go on' }] }),
      );
    });
    const received = await upstream.waitForRequestEnd((r) => r.body?.model === 'fake-long');
    expect(received.clientClosed).toBe(true);
    let rows: UsageRecordRow[] = [];
    for (let attempt = 0; attempt < 100 && rows.length === 0; attempt += 1) {
      rows = await newRows();
      if (rows.length === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ ...keyFields(), aborted: 1, usage_origin: 'estimated', stream: 1 });
    expect(rows[0]!.completion_tokens).toBeGreaterThanOrEqual(3);
    expect(rows[0]!.completion_tokens).toBeLessThan(200);
    expect(rows[0]!.prompt_tokens).toBe(count('go on'));
  });

  it('a client leaving a non-streamed request aborts the upstream request; nothing is recorded', async () => {
    await newRows();
    await new Promise<void>((resolve) => {
      const request = http.request(`${t.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key.key}` },
      });
      request.on('error', () => resolve());
      request.end(
        JSON.stringify({ model: 'fake-slow-leave', messages: [{ role: 'user', content: 'wait' }] }),
      );
      // The fake answers fake-slow after 2 s; the client gives up once keytally has forwarded it.
      void upstream
        .waitForRequestStart((r) => r.body?.model === 'fake-slow-leave')
        .then(() => {
          request.destroy();
          resolve();
        });
    });
    const received = await upstream.waitForRequestEnd((r) => r.body?.model === 'fake-slow-leave');
    expect(received.clientClosed).toBe(true);
    expect(received.completed).toBe(false);
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: LEGACY_HEADERS });
    expect(metrics.body).toMatch(/keytally_usage_unrecorded_total\{reason="client_closed"\} [1-9]/);
    expect(await newRows()).toHaveLength(0);
  });

  it('rollups equal the sums of the raw rows', async () => {
    await t.recorder.flushNow();
    const db = t.database.db.kysely;
    const raw = await db
      .selectFrom('usage_records')
      .select((eb) => [eb.fn.sum<number>('total_tokens').as('tokens'), eb.fn.countAll<number>().as('n')])
      .executeTakeFirstOrThrow();
    const rolled = await db
      .selectFrom('usage_rollups_hourly')
      .select((eb) => [
        eb.fn.sum<number>('total_tokens').as('tokens'),
        eb.fn.sum<number>('request_count').as('n'),
      ])
      .executeTakeFirstOrThrow();
    expect(Number(rolled.tokens)).toBe(Number(raw.tokens));
    expect(Number(rolled.n)).toBe(Number(raw.n));
    expect(Number(raw.n)).toBeGreaterThan(10);
  });
});
