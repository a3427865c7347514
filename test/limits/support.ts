import { encode } from 'gpt-tokenizer';
import OpenAI, { APIError } from 'openai';
import type { DialectName } from '../../src/server/db/dialect.ts';
import { countTextTokens } from '../../src/server/gateway/tokens.ts';
import type { KeyLimitsInput } from '../../src/shared/limits.ts';
import { type Account, registerAccount } from '../auth/support.ts';
import { startTestApp, type TestApp, type TestAppOptions } from '../helpers/app.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';

/** Thirteen words of one o200k token each: the fake upstream reports 13 prompt tokens too. */
export const PROMPT_13 = 'one two three four five six seven eight nine ten eleven twelve thirteen';
/** The fake upstream's reply is 6 tokens: with max_tokens 6 a reservation equals the real usage. */
export const REQUEST_TOKENS = 19;

export function tokensOf(text: string): number {
  return encode(text, { disallowedSpecial: new Set() }).length;
}

export interface LimitsFixture {
  t: TestApp;
  upstream: FakeUpstream;
  admin: Account;
  /** Creates a key for the admin (or `owner`) through the API, with these limits. */
  createKey(limits?: KeyLimitsInput, owner?: Account): Promise<{ id: string; key: string; client: OpenAI }>;
  close(): Promise<void>;
}

export async function startLimitsFixture(
  dialect: DialectName,
  options: Partial<TestAppOptions> = {},
): Promise<LimitsFixture> {
  // Limits count prompts exactly once the encoder is loaded (before, by an upper bound): these
  // tests count on exact reservations.
  await countTextTokens('warm up');
  const upstream = await startFakeUpstream({ slowMs: 400 });
  const t = await startTestApp({
    dialect,
    ...options,
    settings: { upstreamUrl: upstream.baseUrl, ...options.settings },
  });
  await t.listen();
  const admin = await registerAccount(t.app, `admin-${dialect}@example.test`, 'Admin');
  return {
    t,
    upstream,
    admin,
    async createKey(limits, owner = admin) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session: owner.session },
        payload: { name: `key-${Math.random().toString(36).slice(2, 8)}`, ...(limits ? { limits } : {}) },
      });
      if (response.statusCode !== 201) throw new Error(`create key: ${response.statusCode} ${response.body}`);
      const { id, key } = response.json() as { id: string; key: string };
      return { id, key, client: new OpenAI({ apiKey: key, baseURL: `${t.baseUrl}/v1`, maxRetries: 0 }) };
    },
    async close() {
      await t.close();
      await upstream.close();
    },
  };
}

/** One chat request of known size: 13 prompt tokens + max_tokens 6 = 19, what the fake reports. */
export function ask(client: OpenAI, model = 'fake-model') {
  return client.chat.completions
    .create({ model, messages: [{ role: 'user', content: PROMPT_13 }], max_tokens: 6 })
    .withResponse();
}

/** Runs `task` and says whether it succeeded or the status and error type it failed with. */
export async function outcome(
  task: Promise<unknown>,
): Promise<{ ok: true } | { ok: false; status: number; type: string; error: APIError }> {
  try {
    await task;
    return { ok: true };
  } catch (error) {
    if (error instanceof APIError)
      return { ok: false, status: error.status ?? 0, type: String(error.type), error };
    throw error;
  }
}
