import { describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/db.ts';
import { useAccessFixture } from './access-support.ts';
import { createKey, freshIp } from './support.ts';

/**
 * Issue 14 on both databases: key scopes (and that a key never grants more than it has), rotation
 * with a grace period on an injected clock, disable and enable.
 */
describe.each(DIALECTS)('key scopes, rotation and disable on %s', (dialect) => {
  const w = useAccessFixture(dialect);
  const { bearer, chat, get } = w;

  describe('scopes', () => {
    it('a new key gets inference + usage; existing keys keep `all`', async () => {
      const key = await createKey(w.t.app, w.alice.session, { name: 'default' });
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
      const key = await createKey(w.t.app, w.alice.session, { name: 'usage-only', scopes: ['usage'] });
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
      const plain = await createKey(w.t.app, w.admin.session, { name: 'admin-plain' });
      const refused = await get('/api/auth/admin/users', bearer(plain.key));
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error).toBe("this API key lacks the scope 'admin'");
      const scoped = await createKey(w.t.app, w.admin.session, { name: 'admin-scoped', scopes: ['admin'] });
      expect((await get('/api/auth/admin/users', bearer(scoped.key))).statusCode).toBe(200);

      const denied = await w.t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session: w.alice.session },
        payload: { name: 'escalate', scopes: ['inference', 'admin'] },
      });
      expect(denied.statusCode).toBe(403);
      expect(denied.json().error).toBe("scopes: 'admin' is only for admins' keys");
    });

    it('a key never creates a key with more rights than itself', async () => {
      const manager = await createKey(w.t.app, w.alice.session, {
        name: 'manager',
        scopes: ['keys', 'inference'],
        allowedModels: ['gpt-4o*'],
        allowedIps: ['10.0.0.0/8'],
        expiresIn: '7d',
      });
      const as = { ...bearer(manager.key) };
      const create = (payload: Record<string, unknown>) =>
        w.t.app.inject({
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
      const lift = await w.t.app.inject({
        method: 'PATCH',
        url: `/api/auth/api-keys/${manager.id}`,
        headers: as,
        remoteAddress: '10.9.9.9',
        payload: { scopes: ['keys', 'inference', 'usage'] },
      });
      expect(lift.statusCode).toBe(403);
      // and a session cannot be minted from it
      const login = await w.t.app.inject({
        method: 'POST',
        url: '/api/auth/token-login',
        remoteAddress: freshIp(),
        payload: { token: manager.key },
      });
      expect(login.statusCode).toBe(403);
      expect(login.json().error).toMatch(/lacks the scope 'usage'/);
    });

    it('account changes need every scope of the owner', async () => {
      const key = await createKey(w.t.app, w.alice.session, { name: 'keys-only', scopes: ['keys'] });
      const response = await w.t.app.inject({
        method: 'PUT',
        url: '/api/auth/password',
        headers: bearer(key.key),
        payload: { current_password: 'x', new_password: 'y' },
      });
      expect(response.statusCode).toBe(403);
      expect(response.json().missing_scopes).toEqual(['inference', 'usage']);
    });
  });

  describe('rotation', () => {
    it('the old secret works until the grace ends; usage of both lands on one key', async () => {
      const key = await createKey(w.t.app, w.alice.session, {
        name: 'rotating',
        scopes: ['inference', 'usage'],
      });
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      const rotate = await w.t.app.inject({
        method: 'POST',
        url: `/api/auth/api-keys/${key.id}/rotate`,
        cookies: { session: w.alice.session },
        payload: { grace: '1h' },
      });
      expect(rotate.statusCode).toBe(200);
      const rotated = rotate.json();
      expect(rotated).toMatchObject({
        id: key.id,
        name: 'rotating',
        scopes: ['inference', 'usage'],
        previousKeyValidUntil: new Date(w.clock + 3_600_000).toISOString(),
      });
      expect(rotated.key).not.toBe(key.key);
      expect((await chat(bearer(rotated.key))).statusCode).toBe(200);
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      const listed = await get('/api/auth/api-keys', {}, { cookies: { session: w.alice.session } });
      const entry = (listed.json().keys as { id: string; previousKeyValidUntil: string | null }[]).find(
        (k) => k.id === key.id,
      );
      expect(entry?.previousKeyValidUntil).toBe(rotated.previousKeyValidUntil);

      w.clock += 3_600_000;
      const expired = await chat(bearer(key.key));
      expect(expired.statusCode).toBe(401);
      expect(expired.json().error.message).toMatch(/rotation/);
      expect((await chat(bearer(rotated.key))).statusCode).toBe(200);

      await w.t.recorder.flushNow();
      const rows = await w.t.database.db.kysely
        .selectFrom('usage_records')
        .select(['api_key_id', 'api_key_name'])
        .where('api_key_id', '=', key.id)
        .execute();
      expect(rows).toHaveLength(4);
    });

    it('grace 0 ends the old secret at once; a bad grace is a 400 naming it', async () => {
      const key = await createKey(w.t.app, w.alice.session, { name: 'at-once' });
      const rotate = (grace: unknown) =>
        w.t.app.inject({
          method: 'POST',
          url: `/api/auth/api-keys/${key.id}/rotate`,
          cookies: { session: w.alice.session },
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
      const other = await w.t.app.inject({
        method: 'POST',
        url: `/api/auth/api-keys/${key.id}/rotate`,
        cookies: { session: w.admin.session },
        payload: {},
      });
      expect(other.statusCode).toBe(404);
    });
  });

  describe('disable and enable', () => {
    it('a disabled key gets 401 saying so; enabling restores it; the admin twin does the same', async () => {
      const key = await createKey(w.t.app, w.alice.session, { name: 'pausable' });
      const patch = (url: string, session: string, disabled: boolean) =>
        w.t.app.inject({ method: 'PATCH', url, cookies: { session }, payload: { disabled } });
      const off = await patch(`/api/auth/api-keys/${key.id}`, w.alice.session, true);
      expect(off.statusCode).toBe(200);
      expect(off.json().key).toMatchObject({ id: key.id, disabled: true, revoked: false });
      const refused = await chat(bearer(key.key));
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error.message).toMatch(/API key is disabled/);
      expect((await patch(`/api/auth/api-keys/${key.id}`, w.alice.session, false)).statusCode).toBe(200);
      expect((await chat(bearer(key.key))).statusCode).toBe(200);

      expect((await patch(`/api/auth/admin/api-keys/${key.id}`, w.admin.session, true)).statusCode).toBe(200);
      expect((await chat(bearer(key.key))).statusCode).toBe(401);
      expect((await patch(`/api/auth/admin/api-keys/${key.id}`, w.admin.session, false)).statusCode).toBe(
        200,
      );
      expect((await chat(bearer(key.key))).statusCode).toBe(200);
      // another user's key is not found; an empty PATCH names what it takes
      expect((await patch(`/api/auth/api-keys/${key.id}`, w.admin.session, true)).statusCode).toBe(404);
      const empty = await w.t.app.inject({
        method: 'PATCH',
        url: `/api/auth/api-keys/${key.id}`,
        cookies: { session: w.alice.session },
        payload: {},
      });
      expect(empty.statusCode).toBe(400);
      expect(empty.json().error).toMatch(/disabled, scopes, allowedModels, allowedIps/);
    });
  });
});
