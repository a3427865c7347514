import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, registerAccount } from '../auth/support.ts';
import { startTestApp, TEST_HMAC_SECRET, type TestApp } from '../helpers/app.ts';
import { runCliInProcess } from '../helpers/cli.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey } from '../helpers/factories.ts';

// Past what a JavaScript Date can hold (8.64e15 ms after 1970, year 275760).
const OUT_OF_RANGE = 300_000 * 365 * 86_400_000;

describe.each(DIALECTS)('API key expiry bounds on %s (issue 11, item 2)', (dialect) => {
  let t: TestApp;
  let admin: { id: string; session: string };

  beforeAll(async () => {
    t = await startTestApp({ dialect });
    admin = await registerAccount(t.app, 'root@example.test');
  });
  afterAll(async () => {
    await t?.close();
  });

  const create = (body: Record<string, unknown>) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/api-keys',
      cookies: { session: admin.session },
      payload: body,
    });

  it('refuses an expiresIn past 10 years with a 400 naming the field, and stores nothing', async () => {
    for (const expiresIn of ['300000y', '99999999999999999999d', '3651d', '11y']) {
      const response = await create({ name: `too-far-${expiresIn}`, expiresIn });
      expect(response.statusCode, expiresIn).toBe(400);
      expect(response.json().error).toMatch(/expiresIn/);
    }
    const stored = await t.database.db.kysely.selectFrom('api_keys').select('name').execute();
    expect(stored.filter((row) => row.name.startsWith('too-far'))).toEqual([]);
  });

  it('accepts 10 years exactly', async () => {
    const created = await createKey(t.app, admin.session, { name: 'decade', expiresIn: '10y' });
    expect(created.keyPrefix).toMatch(/^kt-/);
  });

  it('refuses an expiresAt past 10 years from now the same way', async () => {
    const response = await create({ name: 'far-date', expiresAt: '9999-12-31T00:00:00Z' });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/expiresAt/);
  });

  it('every key list survives a stored expiry no date can hold', async () => {
    const key = await createApiKey(t.database.db, {
      userId: admin.id,
      name: 'from-the-past',
      expiresAt: Date.now() + OUT_OF_RANGE,
    });
    const own = await t.app.inject({
      method: 'GET',
      url: '/api/auth/api-keys',
      cookies: { session: admin.session },
    });
    expect(own.statusCode).toBe(200);
    const listed = own.json().keys.find((k: { id: string }) => k.id === key.id);
    expect(listed).toMatchObject({ name: 'from-the-past', expired: false });
    expect(Number.isNaN(Date.parse(listed.expiresAt))).toBe(false);

    const all = await t.app.inject({
      method: 'GET',
      url: '/api/auth/admin/api-keys',
      cookies: { session: admin.session },
    });
    expect(all.statusCode).toBe(200);
    expect(all.json().keys.some((k: { id: string }) => k.id === key.id)).toBe(true);

    // The key itself still authenticates (its expiry is just far away).
    const me = await t.app.inject({
      method: 'GET',
      url: '/api/auth/me',
      headers: { authorization: `Bearer ${key.key}` },
    });
    expect(me.statusCode).toBe(200);

    const cli = await runCliInProcess(['key', 'list'], {
      KEYTALLY_DATA_DIR: t.database.dataDir,
      KEYTALLY_DATABASE_URL: t.database.url,
      KEYTALLY_HMAC_SECRET: TEST_HMAC_SECRET,
    });
    expect(cli.code).toBe(0);
    expect(cli.output).toMatch(/from-the-past/);
  });
});
