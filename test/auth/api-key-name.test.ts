import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createKey, registerAccount } from './support.ts';

// A blank name would be an unrecognisable row in the usage breakdown (the CLI already refused it).
describe.each(DIALECTS)('API key names on %s', (dialect) => {
  let t: TestApp;
  let session: string;
  beforeAll(async () => {
    t = await startTestApp({ dialect });
    ({ session } = await registerAccount(t.app, 'qa-admin@example.com', 'QA Admin'));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses a blank (whitespace-only) key name and stores nothing', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/auth/api-keys',
      cookies: { session },
      payload: { name: '   ' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error: 'name is required' });
    const list = await t.app.inject({ method: 'GET', url: '/api/auth/api-keys', cookies: { session } });
    expect(list.json().keys).toEqual([]);
  });

  it('stores a key name without its surrounding spaces', async () => {
    const created = await createKey(t.app, session, { name: '  laptop  ' });
    const list = await t.app.inject({ method: 'GET', url: '/api/auth/api-keys', cookies: { session } });
    expect(list.json().keys.find((key: { id: string }) => key.id === created.id)?.name).toBe('laptop');
  });
});
