import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_KEYS } from '../../src/shared/access.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { ACCESS_MODELS, chatBody, useAccessFixture } from './access-support.ts';
import { createKey, registerAccount } from './support.ts';

/**
 * Issue 14 on both databases: per-key model allowlists, LocalAI permissions and user model
 * allowlists (keys, sessions, the web chat), IP allowlists and KEYTALLY_TRUST_PROXY.
 */
const MODELS = ACCESS_MODELS;

describe.each(DIALECTS)('allowlists and permissions on %s', (dialect) => {
  const w = useAccessFixture(dialect);
  const { bearer, chat, get, modelIds } = w;

  describe('model allowlists', () => {
    it('a key limited to gpt-4o* gets 403 for llama3 and sees only allowed models', async () => {
      const key = await createKey(w.t.app, w.alice.session, { name: 'gpt-only', allowedModels: ['gpt-4o*'] });
      expect((await chat(bearer(key.key), 'gpt-4o-mini')).statusCode).toBe(200);
      const refused = await chat(bearer(key.key), 'llama3');
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toEqual({
        error: {
          message: 'access denied to model: llama3',
          type: 'authorization_error',
          code: 'model_not_allowed',
        },
      });
      expect(await modelIds(bearer(key.key))).toEqual(['gpt-4o', 'gpt-4o-mini']);
      const missing = await w.t.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: bearer(key.key),
        payload: { messages: [] },
      });
      expect(missing.statusCode).toBe(400);
      expect(missing.json().error.message).toMatch(/^model: is required/);
    });

    it("a LocalAI-style user allowlist restricts every key and the user's web chat", async () => {
      const bob = await registerAccount(w.t.app, `bob-${dialect}@example.test`);
      const key = await createKey(w.t.app, bob.session, { name: 'bob-key' });
      expect((await chat(bearer(key.key), 'llama3')).statusCode).toBe(200);
      const set = await w.t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${bob.id}/models`,
        cookies: { session: w.admin.session },
        payload: { enabled: true, models: ['llama3'] },
      });
      expect(set.statusCode).toBe(200);
      expect(set.json()).toEqual({
        message: 'model allowlist updated',
        user_id: bob.id,
        allowed_models: { enabled: true, models: ['llama3'] },
      });
      // the change applies at once (the cache entry is evicted), to keys and sessions alike
      expect((await chat(bearer(key.key), 'gpt-4o')).statusCode).toBe(403);
      expect((await chat(bearer(key.key), 'llama3')).statusCode).toBe(200);
      const web = await chat({}, 'gpt-4o', { cookies: { session: bob.session } });
      expect(web.statusCode).toBe(403);
      expect(web.json().error.message).toBe('access denied to model: gpt-4o');
      expect(await modelIds({}, { session: bob.session })).toEqual(['llama3']);
      expect(await modelIds(bearer(key.key))).toEqual(['llama3']);
      // intersected with a key's own list
      const narrow = await createKey(w.t.app, bob.session, { name: 'narrow', allowedModels: ['gpt-4o'] });
      expect(await modelIds(bearer(narrow.key))).toEqual([]);
      // the admin list shows it; lifting it restores access
      const users = await get('/api/auth/admin/users', {}, { cookies: { session: w.admin.session } });
      const listed = (users.json().users as { id: string; allowed_models: unknown }[]).find(
        (u) => u.id === bob.id,
      );
      expect(listed?.allowed_models).toEqual({ enabled: true, models: ['llama3'] });
      await w.t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${bob.id}/models`,
        cookies: { session: w.admin.session },
        payload: { enabled: false },
      });
      expect((await chat(bearer(key.key), 'gpt-4o')).statusCode).toBe(200);
    });
  });

  describe('LocalAI permissions', () => {
    it('features: the catalogue, defaults, validated PUT, enforcement, presence in /me and /status', async () => {
      const carol = await registerAccount(w.t.app, `carol-${dialect}@example.test`);
      const as = { cookies: { session: w.admin.session } };
      const features = await get('/api/auth/admin/features', {}, as);
      expect(features.statusCode).toBe(200);
      const catalogue = features.json();
      expect(catalogue.agent_features[0]).toEqual({ key: 'agents', label: 'Agents', default: false });
      expect(catalogue.api_features[0]).toEqual({ key: 'chat', label: 'Chat Completions', default: true });
      expect(catalogue.models.sort()).toEqual(MODELS);

      const read = await get(`/api/auth/admin/users/${carol.id}/permissions`, {}, as);
      expect(read.statusCode).toBe(200);
      expect(Object.keys(read.json().permissions)).toEqual(FEATURE_KEYS);
      expect(read.json().permissions).toMatchObject({ chat: true, embeddings: true, agents: false });
      // a GET creates no row
      const rows = await w.t.database.db.kysely.selectFrom('user_permissions').selectAll().execute();
      expect(rows.filter((row) => row.user_id === carol.id)).toEqual([]);

      const typo = await w.t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${carol.id}/permissions`,
        ...as,
        payload: { chat: false, chatt: true },
      });
      expect(typo.statusCode).toBe(400);
      expect(typo.json()).toEqual({ error: 'unknown feature key: chatt' });
      const notBoolean = await w.t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${carol.id}/permissions`,
        ...as,
        payload: { chat: 'no' },
      });
      expect(notBoolean.statusCode).toBe(400);

      const key = await createKey(w.t.app, carol.session, { name: 'carol-key' });
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      const put = await w.t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${carol.id}/permissions`,
        ...as,
        payload: { chat: false, agents: true },
      });
      expect(put.json()).toEqual({
        message: 'permissions updated',
        user_id: carol.id,
        permissions: { chat: false, agents: true },
      });
      const refused = await chat(bearer(key.key));
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toEqual({
        error: {
          message: 'feature not enabled for your account: chat',
          type: 'authorization_error',
          code: 'feature_not_enabled',
        },
      });
      const embed = await w.t.app.inject({
        method: 'POST',
        url: '/v1/embeddings',
        headers: bearer(key.key),
        payload: { model: 'gpt-4o', input: 'x' },
      });
      expect(embed.statusCode).toBe(200);

      const me = await get('/api/auth/me', bearer(key.key));
      expect(me.json().permissions).toMatchObject({ chat: false, agents: true, embeddings: true });
      const status = await get('/api/auth/status', {}, { cookies: { session: carol.session } });
      expect(status.json().user.permissions).toMatchObject({ chat: false, agents: true });
      expect(status.json().user).not.toHaveProperty('allowed_models');
      const adminMe = await get('/api/auth/me', {}, as);
      expect(Object.values(adminMe.json().permissions).every((value) => value === true)).toBe(true);

      const missing = await get('/api/auth/admin/users/no-such-user/permissions', {}, as);
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toEqual({ error: 'user not found' });
    });
  });

  describe('IP allowlists and KEYTALLY_TRUST_PROXY', () => {
    it('without the setting, X-Forwarded-For is ignored: the socket address decides', async () => {
      const key = await createKey(w.t.app, w.alice.session, { name: 'office', allowedIps: ['10.1.0.0/16'] });
      const fromSocket = (remoteAddress: string, forwarded?: string) =>
        chat({ ...bearer(key.key), ...(forwarded ? { 'x-forwarded-for': forwarded } : {}) }, 'gpt-4o', {
          remoteAddress,
        });
      expect((await fromSocket('10.1.2.3')).statusCode).toBe(200);
      const refused = await fromSocket('127.0.0.1', '10.1.2.3');
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.message).toMatch(/may not be used from 127\.0\.0\.1/);
      expect((await fromSocket('::ffff:10.1.9.9')).statusCode).toBe(200);
    });

    it('rejects an allowlist entry that is not a CIDR, naming it', async () => {
      const response = await w.t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session: w.alice.session },
        payload: { name: 'bad', allowedIps: ['10.0.0.0/8', '10.0.0.0/33'] },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toBe(
        'allowedIps[1]: "10.0.0.0/33" is not an IPv4 or IPv6 address or CIDR',
      );
    });
  });
});

describe.each(DIALECTS)('KEYTALLY_TRUST_PROXY=1 on %s', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ models: MODELS });
    t = await startTestApp({ dialect, settings: { upstreamUrl: upstream.baseUrl, trustProxy: '1' } });
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  it('a key allowed from 10.1.0.0/16 works with X-Forwarded-For 10.1.2.3 and not with 10.2.0.1', async () => {
    const user = await registerAccount(t.app, `proxied-${dialect}@example.test`);
    const key = await createKey(t.app, user.session, {
      name: 'behind-proxy',
      allowedIps: ['10.1.0.0/16', '2001:db8::/32'],
    });
    const via = (forwarded: string) =>
      t.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        remoteAddress: '127.0.0.1',
        headers: { authorization: `Bearer ${key.key}`, 'x-forwarded-for': forwarded },
        payload: chatBody('gpt-4o'),
      });
    expect((await via('10.1.2.3')).statusCode).toBe(200);
    const refused = await via('10.2.0.1');
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.message).toMatch(/may not be used from 10\.2\.0\.1/);
    expect((await via('2001:db8::7')).statusCode).toBe(200);
    // one hop is believed: the client's own forged entry further left is not
    expect((await via('10.1.2.3, 10.2.0.1')).statusCode).toBe(403);
  });

  it('the login rate limit counts the forwarded address', async () => {
    const attempt = (forwarded: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: '127.0.0.1',
        headers: { 'x-forwarded-for': forwarded },
        payload: { email: 'nobody@example.test', password: 'wrong password here' },
      });
    for (let i = 0; i < 5; i++) expect((await attempt('192.0.2.10')).statusCode).toBe(401);
    expect((await attempt('192.0.2.10')).statusCode).toBe(429);
    // another client behind the same proxy is not limited by the first
    expect((await attempt('192.0.2.11')).statusCode).toBe(401);
  });
});

describe.each(DIALECTS)("model allowlists on Ollama's API (demo model) on %s", (dialect) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ dialect });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('/api/tags lists only allowed models; `name` and `name:latest` are one model there', async () => {
    const user = await registerAccount(t.app, `ollama-${dialect}@example.test`);
    const tags = async (key: string) =>
      (
        (
          await t.app.inject({ method: 'GET', url: '/api/tags', headers: { authorization: `Bearer ${key}` } })
        ).json().models as { name: string }[]
      ).map((tag) => tag.name);
    const ollamaChat = (key: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/chat',
        headers: { authorization: `Bearer ${key}` },
        payload: { model: 'demo', stream: false, messages: [{ role: 'user', content: 'hi' }] },
      });
    const other = await createKey(t.app, user.session, { name: 'other-only', allowedModels: ['other'] });
    expect(await tags(other.key)).toEqual([]);
    expect((await ollamaChat(other.key)).statusCode).toBe(403);
    const latest = await createKey(t.app, user.session, { name: 'latest', allowedModels: ['demo:latest'] });
    expect(await tags(latest.key)).toEqual(['demo']);
    expect((await ollamaChat(latest.key)).statusCode).toBe(200);
    // OpenAI's routes take names as given
    const openai = await t.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { authorization: `Bearer ${latest.key}` },
      payload: chatBody('demo'),
    });
    expect(openai.statusCode).toBe(403);
  });
});
