import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import type { FakeUpstream } from '../helpers/fake-upstream.ts';
import { startAppWithUpstream } from './support.ts';

/** `{"model":…,"messages":[{"role":"user","content":"hi","x":[[[…]]]}]}` with `levels` levels in all. */
function nestedBody(levels: number): string {
  // The body object, messages array and message object are 3 levels.
  const inner = levels - 3;
  return `{"model":"fake-model","messages":[{"role":"user","content":"hi","x":${'['.repeat(inner)}${']'.repeat(inner)}}]}`;
}

describe.each(DIALECTS)('deeply nested inference bodies on %s (issue 11, item 3)', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let key = '';

  beforeAll(async () => {
    ({ upstream, t, key } = await startAppWithUpstream({
      dialect,
      settings: { apiKeys: 'legacy-secret' },
      listen: false,
    }));
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  const post = (payload: string) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      payload,
    });

  const invalidRequests = async () => {
    const metrics = await t.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: 'Bearer legacy-secret' },
    });
    const line = /keytally_usage_unrecorded_total\{reason="invalid_request"\} (\d+)/.exec(metrics.body);
    return Number(line?.[1] ?? 0);
  };

  it('refuses 10,000 levels with a 400 in the OpenAI shape before forwarding, counted as invalid_request', async () => {
    const before = await invalidRequests();
    const forwarded = upstream.requests.length;
    const response = await post(nestedBody(10_000));
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: { message: expect.stringMatching(/nest/), type: 'invalid_request_error', code: null },
    });
    expect(upstream.requests.length).toBe(forwarded);
    expect(await invalidRequests()).toBe(before + 1);
  });

  it('64 levels pass, 65 do not', async () => {
    expect((await post(nestedBody(64))).statusCode).toBe(200);
    const refused = await post(nestedBody(65));
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.message).toMatch(/64/);
  });
});
