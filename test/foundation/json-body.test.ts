import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, registerAccount } from '../auth/support.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';

// The app's JSON body parser: a body-less request that still carries content-type:
// application/json (generic HTTP clients send it on DELETE) is treated as having no body.
describe.each(DIALECTS)('JSON request bodies on %s', (dialect) => {
  let t: TestApp;
  let session: string;
  beforeAll(async () => {
    t = await startTestApp({ dialect });
    ({ session } = await registerAccount(t.app, 'body-admin@example.com', 'Body Admin'));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('revokes a key on a DELETE that says content-type: application/json but has no body', async () => {
    const created = await createKey(t.app, session, { name: 'deleted-by-generic-client' });
    const response = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/api-keys/${created.id}`,
      cookies: { session },
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ message: 'API key revoked' });
    const again = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/api-keys/${created.id}`,
      cookies: { session },
      headers: { 'content-type': 'application/json' },
    });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ error: 'API key not found' });
  });

  it('still names the problem for an empty or broken JSON body on a POST', async () => {
    const createKey = (payload?: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        cookies: { session },
        headers: { 'content-type': 'application/json' },
        payload,
      });
    const empty = await createKey();
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toEqual({ error: 'request body must be a JSON object' });
    const broken = await createKey('{"name":');
    expect(broken.statusCode).toBe(400);
    expect(broken.json()).toEqual({ error: 'request body is not valid JSON' });
    const poisoned = await createKey('{"name":"x","__proto__":{"admin":true}}');
    expect(poisoned.statusCode).toBe(400);
  });
});
