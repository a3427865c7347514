import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoReply } from '../../src/server/gateway/demo.ts';
import { countTextTokens, estimatePromptTokens } from '../../src/server/gateway/tokens.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';

describe.each(DIALECTS)('the built-in demo model on %s', (dialect) => {
  let t: TestApp;
  let client: OpenAI;

  beforeAll(async () => {
    t = await startTestApp({ dialect });
    await t.listen();
    const user = await createUser(t.database.db, { name: 'Demo User' });
    const key = await createApiKey(t.database.db, { userId: user.id, name: 'demo-key' });
    client = new OpenAI({ apiKey: key.key, baseURL: `${t.baseUrl}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lists only the demo model', async () => {
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual(['demo']);
  });

  it('answers deterministically, streamed and not, with tokenizer-counted usage rows', async () => {
    const body = { model: 'demo', messages: [{ role: 'user' as const, content: 'What can you do?' }] };
    const expected = await demoReply(body);
    const first = await client.chat.completions.create(body);
    const second = await client.chat.completions.create(body);
    expect(first.choices[0]?.message.content).toBe(expected);
    expect(second.choices[0]?.message.content).toBe(expected);
    expect(first.usage?.completion_tokens).toBe(await countTextTokens(expected));
    const stream = await client.chat.completions.create({ ...body, stream: true });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta.content ?? '';
      expect(chunk.usage ?? null).toBeNull();
    }
    expect(text).toBe(expected);
    expect(chunks).toBeGreaterThan(20);

    await t.recorder.flushNow();
    const rows = await t.database.db.kysely.selectFrom('usage_records').selectAll().execute();
    expect(rows).toHaveLength(3);
    const promptTokens = await estimatePromptTokens(body);
    const completionTokens = await countTextTokens(expected);
    for (const row of rows) {
      expect(row).toMatchObject({
        model: 'demo',
        upstream: 'demo',
        usage_origin: 'provider',
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        api_key_name: 'demo-key',
        source: 'apikey',
      });
    }
  });

  it('refuses what a real server refuses, naming the field, and records nothing', async () => {
    const before = await t.database.db.kysely.selectFrom('usage_records').select('id').execute();
    for (const [path, payload, field] of [
      ['/v1/chat/completions', { model: 'demo', messages: 'x' }, 'messages'],
      ['/v1/chat/completions', { model: 'demo', messages: [] }, 'messages'],
      ['/v1/chat/completions', { model: 'demo', messages: ['hi'] }, 'messages[0]'],
      ['/v1/completions', { model: 'demo' }, 'prompt'],
    ] as const) {
      const response = await t.app.inject({
        method: 'POST',
        url: path,
        headers: { authorization: `Bearer ${client.apiKey}` },
        payload,
      });
      expect(response.statusCode).toBe(400);
      const error = (response.json() as { error: { message: string; type: string } }).error;
      expect(error.type).toBe('invalid_request_error');
      expect(error.message.startsWith(`${field}: `)).toBe(true);
    }
    await t.recorder.flushNow();
    const after = await t.database.db.kysely.selectFrom('usage_records').select('id').execute();
    expect(after).toHaveLength(before.length);
  });

  it('counts one token in the singular', async () => {
    const one = { messages: [{ role: 'user', content: 'hi' }] };
    expect(await estimatePromptTokens(one)).toBe(1);
    expect(await demoReply(one)).toContain('You wrote 1 token, ending with "hi"');
    const two = { messages: [{ role: 'user', content: 'hi there' }] };
    expect(await estimatePromptTokens(two)).toBe(2);
    expect(await demoReply(two)).toContain('You wrote 2 tokens,');
  });

  it('any other model is a 404 naming the way out', async () => {
    const error = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).message).toContain('KEYTALLY_UPSTREAM_URL');
  });
});
