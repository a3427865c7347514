import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.ts';
import { registerAccount } from '../auth/support.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../helpers/db.ts';

describe('KEYTALLY_PUBLIC_URL (issue 11, item 8)', () => {
  it('takes an http(s) URL, without its trailing slash', () => {
    expect(loadConfig({}, { KEYTALLY_PUBLIC_URL: 'https://keytally.example.com/' }).publicUrl).toBe(
      'https://keytally.example.com',
    );
    expect(() => loadConfig({}, { KEYTALLY_PUBLIC_URL: 'keytally.example.com' })).toThrow(ConfigError);
    expect(() => loadConfig({}, { KEYTALLY_PUBLIC_URL: 'ftp://keytally.example.com' })).toThrow(
      /KEYTALLY_PUBLIC_URL/,
    );
  });
});

describe.each(DIALECTS)(
  'cookie-authenticated writes need the keytally origin on %s (issue 11, item 8)',
  (dialect) => {
    let database: TestDatabase;
    let t: TestApp;
    let behindProxy: TestApp;
    let session = '';

    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      t = await startTestApp({ dialect, database });
      behindProxy = await startTestApp({
        dialect,
        database,
        settings: { publicUrl: 'https://keytally.example.com' },
      });
      session = (await registerAccount(t.app, 'owner@example.test')).session;
    });
    afterAll(async () => {
      await t?.close();
      await behindProxy?.close();
      await database?.close();
    });

    const createKey = (app: TestApp, headers: Record<string, string>, withCookie = true) =>
      app.app.inject({
        method: 'POST',
        url: '/api/auth/api-keys',
        headers,
        ...(withCookie ? { cookies: { session } } : {}),
        payload: { name: 'from-somewhere' },
      });

    it.each([
      ['a foreign Origin without Sec-Fetch-Site', { origin: 'https://evil.example' }],
      ['a sibling subdomain, same-site', { origin: 'http://evil.localhost', 'sec-fetch-site': 'same-site' }],
      ['Origin: null', { origin: 'null' }],
      ['a foreign Referer and no Origin', { referer: 'https://evil.example/page' }],
      ['cross-site without Origin', { 'sec-fetch-site': 'cross-site' }],
      ['an Origin that is not a URL', { origin: 'localhost' }],
    ])('refuses %s with a 403 in the LocalAI shape', async (_, headers) => {
      const before = await database.db.kysely.selectFrom('api_keys').select('id').execute();
      const response = await createKey(t, headers);
      expect(response.statusCode).toBe(403);
      expect(response.json()).toEqual({ error: expect.stringMatching(/origin|cross-site/) });
      expect(await database.db.kysely.selectFrom('api_keys').select('id').execute()).toHaveLength(
        before.length,
      );
    });

    it.each([
      ["the request's own origin", { origin: 'http://localhost:80' }],
      ["the request's own origin, default port implied", { origin: 'http://localhost' }],
      ['a same-origin Referer', { referer: 'http://localhost/app/account' }],
      ['no browser headers at all (a script with a cookie jar)', {}],
    ])('accepts %s', async (_, headers) => {
      expect((await createKey(t, headers)).statusCode).toBe(201);
    });

    it('behind a proxy, accepts KEYTALLY_PUBLIC_URL as the origin and still refuses others', async () => {
      const fromPublic = await createKey(behindProxy, {
        host: '127.0.0.1:4000',
        origin: 'https://keytally.example.com',
        'sec-fetch-site': 'same-origin',
      });
      expect(fromPublic.statusCode).toBe(201);
      const foreign = await createKey(behindProxy, {
        host: '127.0.0.1:4000',
        origin: 'https://evil.example',
      });
      expect(foreign.statusCode).toBe(403);
    });

    it('bearer-authenticated requests are unaffected by Origin', async () => {
      const response = await createKey(
        t,
        {
          authorization: `Bearer ${session}`,
          origin: 'https://evil.example',
          'sec-fetch-site': 'cross-site',
        },
        false,
      );
      expect(response.statusCode).toBe(201);
    });

    it('safe methods are unaffected', async () => {
      const response = await t.app.inject({
        method: 'GET',
        url: '/api/auth/api-keys',
        cookies: { session },
        headers: { origin: 'https://evil.example' },
      });
      expect(response.statusCode).toBe(200);
    });
  },
);
