import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_KEYS } from '../../src/shared/access.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { type Account, createKey, freshIp, registerAccount } from './support.ts';

/**
 * Issue 14 (Access) against the real app on both databases: scopes, per-key model and IP
 * allowlists, LocalAI permissions and user model allowlists, rotation with a grace period,
 * disable/enable. The clock is injected, so grace periods end without waiting.
 */

const MODELS = ['gpt-4o', 'gpt-4o-mini', 'llama3'];
const chatBody = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }] });

describe.each(DIALECTS)('access on %s', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let clock = Date.parse('2026-12-01T00:00:00Z');
  let admin: Account;
  let alice: Account;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ models: MODELS });
    t = await startTestApp({
      dialect,
      now: () => clock,
      settings: { upstreamUrl: upstream.baseUrl, registrationMode: 'open' },
    });
    admin = await registerAccount(t.app, `admin-${dialect}@example.test`);
    alice = await registerAccount(t.app, `alice-${dialect}@example.test`);
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
  const chat = (headers: Record<string, string>, model = 'gpt-4o', extra: Record<string, unknown> = {}) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers,
      payload: chatBody(model),
      ...extra,
    });
  const get = (url: string, headers: Record<string, string>, extra: Record<string, unknown> = {}) =>
    t.app.inject({ method: 'GET', url, headers, ...extra });
  const modelIds = async (headers: Record<string, string>, cookies?: Record<string, string>) => {
    const response = await t.app.inject({ method: 'GET', url: '/v1/models', headers, cookies });
    expect(response.statusCode).toBe(200);
    return (response.json().data as { id: string }[]).map((entry) => entry.id).sort();
  };

  describe('scopes', () => {
    it('a new key gets inference + usage; existing keys keep `all`', async () => {
      const key = await createKey(t.app, alice.session, { name: 'default' });
      expect(key).toMatchObject({ scopes: ['inference', 'usage'], allowedModels: null, allowedIps: null });
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      expect((await get('/v1/usage', bearer(key.key))).statusCode).toBe(200);
      expect((await get('/api/auth/usage', bearer(key.key))).statusCode).toBe(200);
      expect((await get('/api/auth/me', bearer(key.key))).statusCode).toBe(200);

      const keys = await get('/api/auth/api-keys', bearer(key.key));
      expect(keys.statusCode).toBe(403);
      expect(keys.json()).toEqual({
        error: "this API key lacks the scope 'keys'",
        missing_scopes: ['keys'],
      });
    });

    it('403 names the missing scope in the OpenAI shape on /v1', async () => {
      const key = await createKey(t.app, alice.session, { name: 'usage-only', scopes: ['usage'] });
      const refused = await chat(bearer(key.key));
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toEqual({
        error: {
          message: "this API key lacks the scope 'inference'",
          type: 'authorization_error',
          code: 'missing_scope',
        },
      });
      expect((await get('/v1/models', bearer(key.key))).statusCode).toBe(403);
      expect((await get('/v1/usage', bearer(key.key))).statusCode).toBe(200);
    });

    it("an admin's key reaches admin routes only with the admin scope; users cannot grant it", async () => {
      const plain = await createKey(t.app, admin.session, { name: 'admin-plain' });
      const refused = await get('/api/auth/admin/users', bearer(plain.key));
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error).toBe("this API key lacks the scope 'admin'");
      const scoped = await createKey(t.app, admin.session, { name: 'admin-scoped', scopes: ['admin'] });
      expect((await get('/api/auth/admin/users', bearer(scoped.key))).statusCode).toBe(200);

      const denied = await t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session: alice.session },
        payload: { name: 'escalate', scopes: ['inference', 'admin'] },
      });
      expect(denied.statusCode).toBe(403);
      expect(denied.json().error).toBe("scopes: 'admin' is only for admins' keys");
    });

    it('a key never creates a key with more rights than itself', async () => {
      const manager = await createKey(t.app, alice.session, {
        name: 'manager',
        scopes: ['keys', 'inference'],
        allowedModels: ['gpt-4o*'],
        allowedIps: ['10.0.0.0/8'],
        expiresIn: '7d',
      });
      const as = { ...bearer(manager.key) };
      const create = (payload: Record<string, unknown>) =>
        t.app.inject({
          method: 'POST',
          url: '/api/auth/api-keys',
          headers: as,
          remoteAddress: '10.9.9.9',
          payload,
        });
      const usage = await create({ name: 'child', scopes: ['usage'] });
      expect(usage.statusCode).toBe(403);
      expect(usage.json().error).toBe(
        "scopes: cannot grant 'usage', which the calling API key does not have",
      );
      expect(
        (await create({ name: 'child', scopes: ['inference'], allowedModels: ['llama3'] })).statusCode,
      ).toBe(403);
      expect(
        (await create({ name: 'child', scopes: ['inference'], allowedIps: ['0.0.0.0/0'] })).statusCode,
      ).toBe(403);
      // absent lists inherit the caller's, the expiry is capped at the caller's
      const child = await create({ name: 'child', scopes: ['inference'], expiresIn: '1y' });
      expect(child.statusCode).toBe(201);
      expect(child.json()).toMatchObject({
        scopes: ['inference'],
        allowedModels: ['gpt-4o*'],
        allowedIps: ['10.0.0.0/8'],
        expiresAt: manager.expiresAt,
      });
      const narrower = await create({
        name: 'narrower',
        scopes: ['inference'],
        allowedModels: ['gpt-4o-mini'],
        allowedIps: ['10.1.0.0/16'],
      });
      expect(narrower.statusCode).toBe(201);
      // nor lift its own restrictions
      const lift = await t.app.inject({
        method: 'PATCH',
        url: `/api/auth/api-keys/${manager.id}`,
        headers: as,
        remoteAddress: '10.9.9.9',
        payload: { scopes: ['keys', 'inference', 'usage'] },
      });
      expect(lift.statusCode).toBe(403);
      // and a session cannot be minted from it
      const login = await t.app.inject({
        method: 'POST',
        url: '/api/auth/token-login',
        remoteAddress: freshIp(),
        payload: { token: manager.key },
      });
      expect(login.statusCode).toBe(403);
      expect(login.json().error).toMatch(/lacks the scope 'usage'/);
    });

    it('account changes need every scope of the owner', async () => {
      const key = await createKey(t.app, alice.session, { name: 'keys-only', scopes: ['keys'] });
      const response = await t.app.inject({
        method: 'PUT',
        url: '/api/auth/password',
        headers: bearer(key.key),
        payload: { current_password: 'x', new_password: 'y' },
      });
      expect(response.statusCode).toBe(403);
      expect(response.json().missing_scopes).toEqual(['inference', 'usage']);
    });
  });

  describe('model allowlists', () => {
    it('a key limited to gpt-4o* gets 403 for llama3 and sees only allowed models', async () => {
      const key = await createKey(t.app, alice.session, { name: 'gpt-only', allowedModels: ['gpt-4o*'] });
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
      const missing = await t.app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: bearer(key.key),
        payload: { messages: [] },
      });
      expect(missing.statusCode).toBe(400);
      expect(missing.json().error.message).toMatch(/^model: is required/);
    });

    it("a LocalAI-style user allowlist restricts every key and the user's web chat", async () => {
      const bob = await registerAccount(t.app, `bob-${dialect}@example.test`);
      const key = await createKey(t.app, bob.session, { name: 'bob-key' });
      expect((await chat(bearer(key.key), 'llama3')).statusCode).toBe(200);
      const set = await t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${bob.id}/models`,
        cookies: { session: admin.session },
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
      const narrow = await createKey(t.app, bob.session, { name: 'narrow', allowedModels: ['gpt-4o'] });
      expect(await modelIds(bearer(narrow.key))).toEqual([]);
      // the admin list shows it; lifting it restores access
      const users = await get('/api/auth/admin/users', {}, { cookies: { session: admin.session } });
      const listed = (users.json().users as { id: string; allowed_models: unknown }[]).find(
        (u) => u.id === bob.id,
      );
      expect(listed?.allowed_models).toEqual({ enabled: true, models: ['llama3'] });
      await t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${bob.id}/models`,
        cookies: { session: admin.session },
        payload: { enabled: false },
      });
      expect((await chat(bearer(key.key), 'gpt-4o')).statusCode).toBe(200);
    });
  });

  describe('LocalAI permissions', () => {
    it('features: the catalogue, defaults, validated PUT, enforcement, presence in /me and /status', async () => {
      const carol = await registerAccount(t.app, `carol-${dialect}@example.test`);
      const as = { cookies: { session: admin.session } };
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
      const rows = await t.database.db.kysely.selectFrom('user_permissions').selectAll().execute();
      expect(rows.filter((row) => row.user_id === carol.id)).toEqual([]);

      const typo = await t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${carol.id}/permissions`,
        ...as,
        payload: { chat: false, chatt: true },
      });
      expect(typo.statusCode).toBe(400);
      expect(typo.json()).toEqual({ error: 'unknown feature key: chatt' });
      const notBoolean = await t.app.inject({
        method: 'PUT',
        url: `/api/auth/admin/users/${carol.id}/permissions`,
        ...as,
        payload: { chat: 'no' },
      });
      expect(notBoolean.statusCode).toBe(400);

      const key = await createKey(t.app, carol.session, { name: 'carol-key' });
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      const put = await t.app.inject({
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
          code: 403,
        },
      });
      const embed = await t.app.inject({
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
      const key = await createKey(t.app, alice.session, { name: 'office', allowedIps: ['10.1.0.0/16'] });
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
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session: alice.session },
        payload: { name: 'bad', allowedIps: ['10.0.0.0/8', '10.0.0.0/33'] },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toBe(
        'allowedIps[1]: "10.0.0.0/33" is not an IPv4 or IPv6 address or CIDR',
      );
    });
  });

  describe('rotation', () => {
    it('the old secret works until the grace ends; usage of both lands on one key', async () => {
      const key = await createKey(t.app, alice.session, { name: 'rotating', scopes: ['inference', 'usage'] });
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      const rotate = await t.app.inject({
        method: 'POST',
        url: `/api/auth/api-keys/${key.id}/rotate`,
        cookies: { session: alice.session },
        payload: { grace: '1h' },
      });
      expect(rotate.statusCode).toBe(200);
      const rotated = rotate.json();
      expect(rotated).toMatchObject({
        id: key.id,
        name: 'rotating',
        scopes: ['inference', 'usage'],
        previousKeyValidUntil: new Date(clock + 3_600_000).toISOString(),
      });
      expect(rotated.key).not.toBe(key.key);
      expect((await chat(bearer(rotated.key))).statusCode).toBe(200);
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      const listed = await get('/api/auth/api-keys', {}, { cookies: { session: alice.session } });
      const entry = (listed.json().keys as { id: string; previousKeyValidUntil: string | null }[]).find(
        (k) => k.id === key.id,
      );
      expect(entry?.previousKeyValidUntil).toBe(rotated.previousKeyValidUntil);

      clock += 3_600_000;
      const expired = await chat(bearer(key.key));
      expect(expired.statusCode).toBe(401);
      expect(expired.json().error.message).toMatch(/rotation/);
      expect((await chat(bearer(rotated.key))).statusCode).toBe(200);

      await t.recorder.flushNow();
      const rows = await t.database.db.kysely
        .selectFrom('usage_records')
        .select(['api_key_id', 'api_key_name'])
        .where('api_key_id', '=', key.id)
        .execute();
      expect(rows).toHaveLength(4);
    });

    it('grace 0 ends the old secret at once; a bad grace is a 400 naming it', async () => {
      const key = await createKey(t.app, alice.session, { name: 'at-once' });
      const rotate = (grace: unknown) =>
        t.app.inject({
          method: 'POST',
          url: `/api/auth/api-keys/${key.id}/rotate`,
          cookies: { session: alice.session },
          payload: { grace },
        });
      expect((await rotate('soon')).json()).toEqual({
        error: 'grace: must be seconds or a duration such as 24h, 30m or 0',
      });
      const done = await rotate(0);
      expect(done.statusCode).toBe(200);
      expect(done.json().previousKeyValidUntil).toBeNull();
      expect((await chat(bearer(key.key))).statusCode).toBe(401);
      expect((await chat(bearer(done.json().key))).statusCode).toBe(200);
      // another user's key does not exist for this caller
      const other = await t.app.inject({
        method: 'POST',
        url: `/api/auth/api-keys/${key.id}/rotate`,
        cookies: { session: admin.session },
        payload: {},
      });
      expect(other.statusCode).toBe(404);
    });
  });

  describe('disable and enable', () => {
    it('a disabled key gets 401 saying so; enabling restores it; the admin twin does the same', async () => {
      const key = await createKey(t.app, alice.session, { name: 'pausable' });
      const patch = (url: string, session: string, disabled: boolean) =>
        t.app.inject({ method: 'PATCH', url, cookies: { session }, payload: { disabled } });
      const off = await patch(`/api/auth/api-keys/${key.id}`, alice.session, true);
      expect(off.statusCode).toBe(200);
      expect(off.json().key).toMatchObject({ id: key.id, disabled: true, revoked: false });
      const refused = await chat(bearer(key.key));
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error.message).toMatch(/API key is disabled/);
      expect((await patch(`/api/auth/api-keys/${key.id}`, alice.session, false)).statusCode).toBe(200);
      expect((await chat(bearer(key.key))).statusCode).toBe(200);

      expect((await patch(`/api/auth/admin/api-keys/${key.id}`, admin.session, true)).statusCode).toBe(200);
      expect((await chat(bearer(key.key))).statusCode).toBe(401);
      expect((await patch(`/api/auth/admin/api-keys/${key.id}`, admin.session, false)).statusCode).toBe(200);
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      // another user's key is not found; an empty PATCH names what it takes
      expect((await patch(`/api/auth/api-keys/${key.id}`, admin.session, true)).statusCode).toBe(404);
      const empty = await t.app.inject({
        method: 'PATCH',
        url: `/api/auth/api-keys/${key.id}`,
        cookies: { session: alice.session },
        payload: {},
      });
      expect(empty.statusCode).toBe(400);
      expect(empty.json().error).toMatch(/disabled, scopes, allowedModels, allowedIps/);
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
