import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import {
  FAKE_PROMPT_TOKENS,
  FAKE_REPLY,
  FAKE_REPLY_WORDS,
  type FakeUpstream,
  startFakeUpstream,
} from '../helpers/fake-upstream.ts';
import { countTokens, rowReader, startClientApp, writeUpstreamsConfig } from './support.ts';

const messages = [{ role: 'user' as const, content: 'Say hello' }];

describe.each(DIALECTS)('@anthropic-ai/sdk through keytally on %s', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let key: { id: string; key: string };
  let revokedKey: string;
  let userId: string;
  const newRows = rowReader(() => t);
  /** The x-api-key generation of the client. */
  let viaApiKey: Anthropic;
  /** The Bearer generation (authToken). */
  let viaBearer: Anthropic;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    const configFile = writeUpstreamsConfig([
      {
        name: 'fake',
        url: upstream.baseUrl,
        api_key: 'up-secret',
        models: ['fake-model', 'fake-429', 'fake-no-count'],
      },
    ]);
    ({ t, userId, key, revokedKey } = await startClientApp(dialect, configFile, {
      user: 'Ada',
      key: 'claude-code',
    }));
    viaApiKey = new Anthropic({ apiKey: key.key, baseURL: t.baseUrl, maxRetries: 0 });
    viaBearer = new Anthropic({ authToken: key.key, apiKey: null, baseURL: t.baseUrl, maxRetries: 0 });
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  const row = (extra: Record<string, unknown>) => ({
    user_id: userId,
    source: 'apikey',
    api_key_id: key.id,
    api_key_name: 'claude-code',
    upstream: 'fake',
    model: 'fake-model',
    endpoint: '/v1/messages',
    prompt_tokens: FAKE_PROMPT_TOKENS,
    completion_tokens: FAKE_REPLY_WORDS.length,
    usage_origin: 'provider',
    aborted: 0,
    ...extra,
  });

  it('messages.create, x-api-key and Bearer: the answer, its usage, one row each', async () => {
    for (const client of [viaApiKey, viaBearer]) {
      const message = await client.messages.create({ model: 'fake-model', max_tokens: 64, messages });
      expect(message.content[0]).toMatchObject({ type: 'text', text: FAKE_REPLY });
      expect(message.usage).toMatchObject({
        input_tokens: FAKE_PROMPT_TOKENS,
        output_tokens: FAKE_REPLY_WORDS.length,
      });
      // keytally's key is never forwarded; the upstream's own is.
      const received = upstream.requests.at(-1);
      expect(received?.headers['x-api-key']).toBe('up-secret');
      expect(received?.headers.authorization).toBe('Bearer up-secret');
    }
    const rows = await newRows();
    expect(rows).toHaveLength(2);
    for (const recorded of rows) expect(recorded).toMatchObject(row({ stream: 0 }));
  });

  it('messages.stream: the text as it streams, the final usage, one row', async () => {
    const stream = viaApiKey.messages.stream({ model: 'fake-model', max_tokens: 64, messages });
    let text = '';
    stream.on('text', (piece) => {
      text += piece;
    });
    const final = await stream.finalMessage();
    expect(text).toBe(FAKE_REPLY);
    expect(final.usage).toMatchObject({
      input_tokens: FAKE_PROMPT_TOKENS,
      output_tokens: FAKE_REPLY_WORDS.length,
    });
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject(row({ stream: 1 }));
  });

  it("a revoked key: AuthenticationError carrying keytally's message and Anthropic's type", async () => {
    const refused = new Anthropic({ apiKey: revokedKey, baseURL: t.baseUrl, maxRetries: 0 });
    const error = await refused.messages
      .create({ model: 'fake-model', max_tokens: 8, messages })
      .catch((e) => e);
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(error.status).toBe(401);
    expect(error.type).toBe('authentication_error');
    expect(error.apiMessage).toBe('API key revoked');
    // The text, not the body as raw JSON.
    expect(error.message).toBe('401 API key revoked');
    expect(error.error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    expect(error.requestID).toBeNull();
  });

  it('an unknown model: NotFoundError with the message naming it', async () => {
    const error = await viaApiKey.messages.create({ model: 'nope', max_tokens: 8, messages }).catch((e) => e);
    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    expect(error.type).toBe('not_found_error');
    expect(error.apiMessage).toContain('The model "nope" does not exist here');
    expect(error.message).toMatch(/^404 The model "nope" does not exist here/);
    expect(await newRows()).toHaveLength(0);
  });

  it("keytally's 401 and 403 are Anthropic-shaped too", async () => {
    const anonymous = await t.app.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: { model: 'fake-model' },
    });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({
      type: 'error',
      error: { type: 'authentication_error', message: 'An authentication key is required' },
    });
    const crossSite = await t.app.inject({
      method: 'POST',
      url: '/v1/messages/count_tokens',
      headers: { 'sec-fetch-site': 'cross-site' },
      payload: { model: 'fake-model' },
    });
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.json()).toMatchObject({
      type: 'error',
      error: { type: 'permission_error', message: 'cross-site request refused' },
    });
  });

  it("keytally's 400 is Anthropic-shaped; an upstream's own error passes through as it came", async () => {
    const response = await fetch(`${t.baseUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key.key, 'content-type': 'application/json' },
      body: JSON.stringify({ max_tokens: 8, messages }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: 'model: is required (a model id string)' },
      request_id: response.headers.get('x-request-id'),
      message: 'model: is required (a model id string)',
    });
    const limited = await viaApiKey.messages
      .create({ model: 'fake-429', max_tokens: 8, messages })
      .catch((e) => e);
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    expect(limited.apiMessage).toBe('Rate limit reached for fake-429');
  });

  it('messages.countTokens: forwarded, no usage row; an upstream without it gets the flagged estimate', async () => {
    const { data, response } = await viaApiKey.messages
      .countTokens({ model: 'fake-model', messages })
      .withResponse();
    expect(data.input_tokens).toBe(FAKE_PROMPT_TOKENS);
    expect(response.headers.get('x-keytally-usage-origin')).toBe('provider');
    expect(upstream.requests.at(-1)?.path).toBe('/v1/messages/count_tokens');
    expect(upstream.requests.at(-1)?.headers['x-api-key']).toBe('up-secret');
    const system = 'You are terse.';
    const estimated = await viaApiKey.messages
      .countTokens({ model: 'fake-no-count', system, messages })
      .withResponse();
    expect(estimated.data.input_tokens).toBe(countTokens(system) + countTokens('Say hello'));
    expect(estimated.response.headers.get('x-keytally-usage-origin')).toBe('estimated');
    expect(await newRows()).toHaveLength(0);
    const refused = new Anthropic({ apiKey: revokedKey, baseURL: t.baseUrl, maxRetries: 0 });
    await expect(refused.messages.countTokens({ model: 'fake-model', messages })).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
  });
});

describe.each(DIALECTS)('Anthropic-shaped errors of an unreachable or slow upstream on %s', (dialect) => {
  let t: TestApp;
  let demo: TestApp;
  let slow: FakeUpstream;

  beforeAll(async () => {
    slow = await startFakeUpstream({ slowMs: 2000 });
    const configFile = writeUpstreamsConfig([
      // Nothing listens on port 9 of 127.0.0.1 (discard): connection refused.
      { name: 'gone', url: 'http://127.0.0.1:9/v1', models: ['any'] },
      { name: 'slow', url: slow.baseUrl, models: ['fake-slow'], timeout_ms: 100 },
    ]);
    t = await startTestApp({ dialect, settings: { configFile, apiKeys: 'legacy-secret' } });
    await t.listen();
    demo = await startTestApp({ dialect, settings: { apiKeys: 'legacy-secret' } });
    await demo.listen();
  });
  afterAll(async () => {
    await t?.close();
    await demo?.close();
    await slow?.close();
  });

  it('an unreachable upstream is a 502 api_error with the message', async () => {
    const client = new Anthropic({ apiKey: 'legacy-secret', baseURL: t.baseUrl, maxRetries: 0 });
    const error = await client.messages.create({ model: 'any', max_tokens: 8, messages }).catch((e) => e);
    expect(error.status).toBe(502);
    expect(error.type).toBe('api_error');
    expect(error.apiMessage).toContain('Cannot reach the upstream "gone"');
  });

  it('an upstream that does not answer in time is a 504 timeout_error', async () => {
    const client = new Anthropic({ apiKey: 'legacy-secret', baseURL: t.baseUrl, maxRetries: 0 });
    const error = await client.messages
      .create({ model: 'fake-slow', max_tokens: 8, messages })
      .catch((e) => e);
    expect(error.status).toBe(504);
    expect(error.type).toBe('timeout_error');
    expect(error.apiMessage).toContain('The upstream "slow"');
    expect(error.apiMessage).toContain('did not answer in time');
  });

  it('countTokens on the demo model: the tokenizer answers, flagged', async () => {
    const client = new Anthropic({ apiKey: 'legacy-secret', baseURL: demo.baseUrl, maxRetries: 0 });
    const { data, response } = await client.messages.countTokens({ model: 'demo', messages }).withResponse();
    expect(data.input_tokens).toBe(countTokens('Say hello'));
    expect(response.headers.get('x-keytally-usage-origin')).toBe('estimated');
  });
});
