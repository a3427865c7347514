import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { APICallError, embed, generateText, type LanguageModel, streamText } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import {
  FAKE_EMBEDDING_TOKENS,
  FAKE_PROMPT_TOKENS,
  FAKE_REPLY,
  FAKE_REPLY_WORDS,
  type FakeUpstream,
  startFakeUpstream,
} from '../helpers/fake-upstream.ts';
import { rowReader, startClientApp, writeUpstreamsConfig } from './support.ts';

const COMPLETION = FAKE_REPLY_WORDS.length;

describe.each(DIALECTS)('the Vercel AI SDK through keytally on %s', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let key: { id: string; key: string };
  let revokedKey: string;
  let userId: string;
  const newRows = rowReader(() => t);

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    const configFile = writeUpstreamsConfig([
      { name: 'fake', url: upstream.baseUrl, api_key: 'up-secret', models: ['fake-model', 'fake-other'] },
    ]);
    ({ t, userId, key, revokedKey } = await startClientApp(dialect, configFile, {
      user: 'Vera',
      key: 'ai-sdk',
    }));
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  const openai = (apiKey: string) => createOpenAI({ apiKey, baseURL: `${t.baseUrl}/v1` });
  const anthropic = (apiKey: string) => createAnthropic({ apiKey, baseURL: `${t.baseUrl}/v1` });
  const models: [string, (apiKey: string) => LanguageModel, string][] = [
    ['@ai-sdk/openai chat', (apiKey) => openai(apiKey).chat('fake-model'), '/v1/chat/completions'],
    ['@ai-sdk/openai responses', (apiKey) => openai(apiKey).responses('fake-model'), '/v1/responses'],
    ['@ai-sdk/openai completion', (apiKey) => openai(apiKey).completion('fake-model'), '/v1/completions'],
    ['@ai-sdk/anthropic', (apiKey) => anthropic(apiKey)('fake-model'), '/v1/messages'],
  ];
  const row = (endpoint: string, stream: number) => ({
    user_id: userId,
    api_key_id: key.id,
    api_key_name: 'ai-sdk',
    source: 'apikey',
    model: 'fake-model',
    endpoint,
    upstream: 'fake',
    prompt_tokens: FAKE_PROMPT_TOKENS,
    completion_tokens: COMPLETION,
    usage_origin: 'provider',
    aborted: 0,
    stream,
  });

  it.each(models)(
    '%s: generateText and streamText, usage as keytally recorded it',
    async (_name, model, endpoint) => {
      const whole = await generateText({ model: model(key.key), prompt: 'Say hello', maxRetries: 0 });
      expect(whole.text).toBe(FAKE_REPLY);
      expect(whole.usage).toMatchObject({ inputTokens: FAKE_PROMPT_TOKENS, outputTokens: COMPLETION });
      const streamed = streamText({
        model: model(key.key),
        prompt: 'Say hello',
        maxRetries: 0,
        onError: () => {},
      });
      let text = '';
      for await (const piece of streamed.textStream) text += piece;
      expect(text).toBe(FAKE_REPLY);
      expect(await streamed.usage).toMatchObject({
        inputTokens: FAKE_PROMPT_TOKENS,
        outputTokens: COMPLETION,
      });
      const rows = await newRows();
      expect(rows.sort((a, b) => a.stream - b.stream)).toMatchObject([row(endpoint, 0), row(endpoint, 1)]);
    },
  );

  it('@ai-sdk/openai embed: the vector, its tokens, one row', async () => {
    const result = await embed({
      model: openai(key.key).embedding('fake-model'),
      value: 'hi',
      maxRetries: 0,
    });
    expect(result.embedding).toEqual([0.1, 0.2, 0.3]);
    expect(result.usage.tokens).toBe(FAKE_EMBEDDING_TOKENS);
    const rows = await newRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ endpoint: '/v1/embeddings', prompt_tokens: FAKE_EMBEDDING_TOKENS });
  });

  it.each(models)("%s: a revoked key and an unknown model show keytally's message", async (name, model) => {
    const revoked = await generateText({ model: model(revokedKey), prompt: 'hi', maxRetries: 0 }).catch(
      (e) => e,
    );
    expect(APICallError.isInstance(revoked), name).toBe(true);
    expect(revoked.statusCode).toBe(401);
    expect(revoked.message).toBe('API key revoked');
    const unknownModel = name.startsWith('@ai-sdk/anthropic')
      ? anthropic(key.key)('nope')
      : name.endsWith('responses')
        ? openai(key.key).responses('nope')
        : name.endsWith('completion')
          ? openai(key.key).completion('nope')
          : openai(key.key).chat('nope');
    const missing = await generateText({ model: unknownModel, prompt: 'hi', maxRetries: 0 }).catch((e) => e);
    expect(APICallError.isInstance(missing), name).toBe(true);
    expect(missing.statusCode).toBe(404);
    expect(missing.message).toContain('The model "nope" does not exist here');
    expect(await newRows()).toHaveLength(0);
  });
});
