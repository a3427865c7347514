import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import {
  FAKE_PROMPT_TOKENS,
  FAKE_REPLY,
  FAKE_REPLY_WORDS,
  type FakeUpstream,
  startFakeUpstream,
} from '../helpers/fake-upstream.ts';
import { rowReader, startClientApp, writeUpstreamsConfig } from './support.ts';

const messages = [{ role: 'user' as const, content: 'Say hello' }];
const usage = {
  prompt_tokens: FAKE_PROMPT_TOKENS,
  completion_tokens: FAKE_REPLY_WORDS.length,
  total_tokens: FAKE_PROMPT_TOKENS + FAKE_REPLY_WORDS.length,
};

describe.each(DIALECTS)('the openai client through keytally on %s', (dialect) => {
  let keyed: FakeUpstream;
  let open: FakeUpstream;
  let t: TestApp;
  let key: { id: string; key: string };
  let userId: string;
  let client: OpenAI;
  const newRows = rowReader(() => t);
  const keys: Record<'revoked' | 'expired' | 'disabled', string> = { revoked: '', expired: '', disabled: '' };

  beforeAll(async () => {
    keyed = await startFakeUpstream();
    open = await startFakeUpstream();
    const configFile = writeUpstreamsConfig([
      // keytally's key, its own organization and project: the client's never reach it.
      {
        name: 'hosted',
        url: keyed.baseUrl,
        api_key: 'up-secret',
        organization: 'org-keytally',
        project: 'proj-keytally',
        models: ['fake-model', 'fake-429'],
      },
      // keytally's key, no organization: the client's are dropped.
      { name: 'keyed-plain', url: keyed.baseUrl, api_key: 'up-secret', models: ['fake-other'] },
      // no key of keytally's: the client's organization/project are the only ones, so they pass.
      { name: 'open', url: open.baseUrl, models: ['open-model'] },
    ]);
    ({
      t,
      userId,
      key,
      revokedKey: keys.revoked,
    } = await startClientApp(dialect, configFile, { user: 'Otto', key: 'sdk' }));
    keys.expired = (await createApiKey(t.database.db, { userId, expiresAt: Date.now() - 1000 })).key;
    const disabled = await createUser(t.database.db, { status: 'disabled' });
    keys.disabled = (await createApiKey(t.database.db, { userId: disabled.id })).key;
    client = new OpenAI({
      apiKey: key.key,
      baseURL: `${t.baseUrl}/v1`,
      organization: 'org-client',
      project: 'proj-client',
      maxRetries: 0,
    });
  });
  afterAll(async () => {
    await t?.close();
    await keyed?.close();
    await open?.close();
  });

  const row = (extra: Record<string, unknown>) => ({
    user_id: userId,
    source: 'apikey',
    api_key_id: key.id,
    api_key_name: 'sdk',
    model: 'fake-model',
    endpoint: '/v1/chat/completions',
    upstream: 'hosted',
    prompt_tokens: FAKE_PROMPT_TOKENS,
    completion_tokens: FAKE_REPLY_WORDS.length,
    usage_origin: 'provider',
    aborted: 0,
    ...extra,
  });

  it('chat, not streamed: answer, usage, one row', async () => {
    const reply = await client.chat.completions.create({ model: 'fake-model', messages });
    expect(reply.choices[0]?.message.content).toBe(FAKE_REPLY);
    expect(reply.usage).toEqual(usage);
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject(row({ stream: 0 }));
  });

  it('chat, streamed with include_usage: the text, the usage chunk, one row', async () => {
    const stream = await client.chat.completions.create({
      model: 'fake-model',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let seenUsage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) seenUsage = chunk.usage;
    }
    expect(text).toBe(FAKE_REPLY);
    expect(seenUsage).toEqual(usage);
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject(row({ stream: 1 }));
  });

  it("header hygiene: the upstream's organization replaces the client's; without one both are dropped", async () => {
    await client.chat.completions.create({ model: 'fake-model', messages });
    const hosted = keyed.requests.at(-1);
    expect(hosted?.headers['openai-organization']).toBe('org-keytally');
    expect(hosted?.headers['openai-project']).toBe('proj-keytally');
    expect(hosted?.headers.authorization).toBe('Bearer up-secret');
    await client.chat.completions.create({ model: 'fake-other', messages });
    const plain = keyed.requests.at(-1);
    expect(plain?.body?.model).toBe('fake-other');
    expect(plain?.headers['openai-organization']).toBeUndefined();
    expect(plain?.headers['openai-project']).toBeUndefined();
    // Other client headers pass through (the SDK's own, and a custom one).
    expect(plain?.headers['user-agent']).toMatch(/^OpenAI\/JS/);
    expect(plain?.headers['x-stainless-lang']).toBe('js');
    await client.chat.completions.create({ model: 'open-model', messages });
    const passed = open.requests.at(-1);
    expect(passed?.headers['openai-organization']).toBe('org-client');
    expect(passed?.headers['openai-project']).toBe('proj-client');
    expect(passed?.headers.authorization).toBeUndefined();
    await newRows();
  });

  it("a revoked, expired, disabled or unknown key: 401 invalid_api_key, keytally's reason as the message", async () => {
    const cases: [string, string][] = [
      [keys.revoked, 'API key revoked'],
      [keys.expired, 'API key expired'],
      [keys.disabled, 'user account is not active'],
      [`kt-${'0'.repeat(64)}`, 'invalid API key'],
      ['not-a-keytally-key', 'invalid API key'],
    ];
    for (const [apiKey, reason] of cases) {
      const refused = new OpenAI({ apiKey, baseURL: `${t.baseUrl}/v1`, maxRetries: 0 });
      const error = await refused.chat.completions.create({ model: 'fake-model', messages }).catch((e) => e);
      expect(error, reason).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(error.message).toBe(`401 ${reason}`);
      expect(error.code).toBe('invalid_api_key');
      expect(error.type).toBe('invalid_request_error');
    }
    const anonymous = await fetch(`${t.baseUrl}/v1/models`);
    expect((await anonymous.json()).error).toEqual({
      message: 'An authentication key is required',
      type: 'invalid_request_error',
      code: null,
    });
    expect(await newRows()).toHaveLength(0);
  });

  it('an unknown model: NotFoundError, code model_not_found, the message naming the served models', async () => {
    const error = await client.chat.completions.create({ model: 'nope', messages }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.code).toBe('model_not_found');
    expect(error.message).toContain('The model "nope" does not exist here');
    expect(error.message).toContain('"open-model"');
  });

  it("every code keytally sends is a string or null: a 400 has null, an upstream's own error passes through", async () => {
    const bad = await fetch(`${t.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toEqual({
      message: 'model: is required (a model id string)',
      type: 'invalid_request_error',
      code: null,
    });
    const limited = await client.chat.completions.create({ model: 'fake-429', messages }).catch((e) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limited.message).toBe('429 Rate limit reached for fake-429');
  });
});
