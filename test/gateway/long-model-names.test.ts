import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUsageUpstream, type UsageUpstream } from '../cost/usage-upstream.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';

const HEADERS = { authorization: 'Bearer legacy-secret', 'content-type': 'application/json' };
// 300 characters, some of them two bytes in UTF-8 (PostgreSQL's varchar(255) counts characters).
const LONG = `modèle-${'é'.repeat(150)}${'x'.repeat(143)}`;

describe.each(DIALECTS)('model names longer than a usage row holds, on %s', (dialect) => {
  let upstream: UsageUpstream;
  let t: TestApp;

  beforeAll(async () => {
    upstream = await startUsageUpstream();
    // An upstream that names the model it served in more than 255 characters.
    upstream.servedAs.set('long-answer', LONG);
    for (const model of ['long-answer', 'short'])
      upstream.usage.set(model, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    t = await startTestApp({
      dialect,
      settings: { upstreamUrl: upstream.baseUrl, apiKeys: 'legacy-secret' },
    });
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  const chat = (model: string) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: HEADERS,
      payload: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });

  it('a requested model name over 255 characters is refused with 400 naming the field, not forwarded', async () => {
    const before = upstream.requests();
    const refused = await chat('m'.repeat(256));
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.message).toContain('model: must be at most 255 characters');
    expect(upstream.requests()).toBe(before);
    // 255 characters, two bytes each in UTF-8: allowed.
    expect((await chat('é'.repeat(255))).statusCode).toBe(200);
  });

  it('an upstream naming its model in over 255 characters: the row keeps 255, and later rows still commit', async () => {
    await t.recorder.flushNow();
    await t.database.db.kysely.deleteFrom('usage_records').execute();
    expect((await chat('long-answer')).statusCode).toBe(200);
    expect((await chat('short')).statusCode).toBe(200);
    await t.recorder.flushNow();
    const rows = await t.database.db.kysely
      .selectFrom('usage_records')
      .select(['model', 'total_tokens'])
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    expect(rows.map((row) => row.model).sort()).toEqual(
      [Array.from(LONG).slice(0, 255).join(''), 'short'].sort(),
    );
    expect(rows.map((row) => Number(row.total_tokens))).toEqual([5, 5]);
    expect(t.recorder.stats()).toMatchObject({ queueDepth: 0, flushFailures: 0 });
  });
});
