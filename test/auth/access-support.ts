import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import type { DialectName } from '../../src/server/db/dialect.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { type Account, registerAccount } from './support.ts';

/**
 * The set-up the access tests share: the real app on a fresh database with an injected clock (so
 * rotation grace periods end without waiting), a fake upstream serving three models, an admin and
 * a user. Fields are filled in beforeAll; read them inside tests.
 */
export const ACCESS_MODELS = ['gpt-4o', 'gpt-4o-mini', 'llama3'];

export const chatBody = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }] });

export interface AccessFixture {
  t: TestApp;
  upstream: FakeUpstream;
  clock: number;
  admin: Account;
  alice: Account;
  bearer(key: string): Record<string, string>;
  chat(
    headers: Record<string, string>,
    model?: string,
    extra?: Record<string, unknown>,
  ): Promise<LightMyRequestResponse>;
  get(
    url: string,
    headers: Record<string, string>,
    extra?: Record<string, unknown>,
  ): Promise<LightMyRequestResponse>;
  /** The ids /v1/models lists for this caller, sorted. */
  modelIds(headers: Record<string, string>, cookies?: Record<string, string>): Promise<string[]>;
}

export function useAccessFixture(dialect: DialectName, settings: Record<string, string> = {}): AccessFixture {
  const w = {} as AccessFixture;
  w.clock = Date.parse('2026-12-01T00:00:00Z');
  w.bearer = (key) => ({ authorization: `Bearer ${key}` });
  w.chat = (headers, model = 'gpt-4o', extra = {}) =>
    w.t.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers,
      payload: chatBody(model),
      ...extra,
    });
  w.get = (url, headers, extra = {}) => w.t.app.inject({ method: 'GET', url, headers, ...extra });
  w.modelIds = async (headers, cookies) => {
    const response = await w.t.app.inject({ method: 'GET', url: '/v1/models', headers, cookies });
    if (response.statusCode !== 200) throw new Error(`/v1/models: ${response.statusCode} ${response.body}`);
    return (response.json().data as { id: string }[]).map((entry) => entry.id).sort();
  };
  beforeAll(async () => {
    w.upstream = await startFakeUpstream({ models: ACCESS_MODELS });
    w.t = await startTestApp({
      dialect,
      now: () => w.clock,
      settings: { upstreamUrl: w.upstream.baseUrl, registrationMode: 'open', ...settings },
    });
    w.admin = await registerAccount(w.t.app, `admin-${dialect}@example.test`);
    w.alice = await registerAccount(w.t.app, `alice-${dialect}@example.test`);
  });
  afterAll(async () => {
    await w.t?.close();
    await w.upstream?.close();
  });
  return w;
}
