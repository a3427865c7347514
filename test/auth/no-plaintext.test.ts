import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DIALECTS, makeTempDir } from '../helpers/db.ts';
import { createTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { type KeytallyProcess, startKeytally } from '../helpers/process.ts';

/**
 * A full register → login → create key → use key → token-login → password change → invite →
 * revoke → logout flow against a real process logging at debug; afterwards neither the database
 * (every table, or the SQLite files) nor the data directory nor the logs hold any password, key,
 * session token or invite code in plaintext.
 */

const HMAC = 'no-plaintext-hmac-secret-0123456789abcdef';
const LEGACY_KEY = 'legacy-no-plaintext-key-0123456789';
const PASSWORD_1 = 'first plaintext password 1';
const PASSWORD_2 = 'second plaintext password 2';

function sessionFrom(response: Response): string {
  for (const header of response.headers.getSetCookie()) {
    const match = /^session=([0-9a-f]{64});/.exec(header);
    if (match?.[1]) return match[1];
  }
  throw new Error(`no session cookie (status ${response.status})`);
}

function readTree(dir: string): string {
  let text = '';
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) text += readTree(full);
    else text += fs.readFileSync(full).toString('latin1');
  }
  return text;
}

async function dumpPostgres(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ table_name: string }>(
      "select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'",
    );
    let text = '';
    for (const { table_name } of tables.rows) {
      const rows = await client.query(`select * from "${table_name}"`);
      text += JSON.stringify(rows.rows);
    }
    return text;
  } finally {
    await client.end();
  }
}

describe.each(DIALECTS)('no plaintext secrets on %s', (dialect) => {
  const dirs: string[] = [];
  let postgres: TestPostgres | undefined;
  let proc: KeytallyProcess | undefined;
  afterAll(async () => {
    await proc?.stop('SIGKILL');
    await postgres?.cleanup();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps passwords, keys, session tokens and invite codes out of the database and the logs', async () => {
    const dataDir = makeTempDir();
    dirs.push(dataDir);
    const env: Record<string, string> = {
      KEYTALLY_DATA_DIR: dataDir,
      KEYTALLY_HMAC_SECRET: HMAC,
      KEYTALLY_API_KEYS: LEGACY_KEY,
      KEYTALLY_REGISTRATION_MODE: 'open',
      KEYTALLY_LOG_LEVEL: 'debug',
    };
    if (dialect === 'postgres') {
      postgres = await createTestPostgres();
      env.KEYTALLY_DATABASE_URL = postgres.url;
    }
    proc = await startKeytally(env);
    const base = proc.baseUrl;
    const json = (method: string, url: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}${url}`, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    const secrets: Record<string, string> = { PASSWORD_1, PASSWORD_2, LEGACY_KEY };
    const registered = await json('POST', '/api/auth/register', {
      email: 'secret-owner@example.test',
      password: PASSWORD_1,
      name: 'Owner',
    });
    expect(registered.status).toBe(201);
    secrets.session1 = sessionFrom(registered);
    const loggedIn = await json('POST', '/api/auth/login', {
      email: 'secret-owner@example.test',
      password: PASSWORD_1,
    });
    expect(loggedIn.status).toBe(200);
    const session = sessionFrom(loggedIn);
    secrets.session2 = session;
    const cookie = { cookie: `session=${session}` };

    const created = await json(
      'POST',
      '/api/auth/api-keys',
      { name: 'secret-key', scopes: ['inference', 'usage', 'keys', 'admin'] },
      cookie,
    );
    expect(created.status).toBe(201);
    const { id: keyId, key } = (await created.json()) as { id: string; key: string };
    secrets.key = key;

    expect((await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(
      200,
    );
    expect((await fetch(`${base}/api/auth/me`, { headers: { 'x-api-key': key } })).status).toBe(200);
    expect(
      (await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status,
    ).not.toBe(401);
    await json(
      'POST',
      '/v1/chat/completions',
      { model: 'demo', messages: [{ role: 'user', content: 'hi' }] },
      { authorization: `Bearer ${key}` },
    );
    expect(
      (await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${LEGACY_KEY}` } })).status,
    ).not.toBe(401);
    // a wrong password and a wrong key are not logged either
    secrets.wrongPassword = 'a wrong password attempt';
    expect(
      (
        await json('POST', '/api/auth/login', {
          email: 'secret-owner@example.test',
          password: secrets.wrongPassword,
        })
      ).status,
    ).toBe(401);
    secrets.wrongKey = `kt-${'e'.repeat(64)}`;
    expect(
      (await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${secrets.wrongKey}` } })).status,
    ).toBe(401);

    const tokenLogin = await json('POST', '/api/auth/token-login', { token: key });
    expect(tokenLogin.status).toBe(200);
    secrets.session3 = sessionFrom(tokenLogin);

    const invite = await json('POST', '/api/auth/admin/invites', {}, cookie);
    expect(invite.status).toBe(201);
    secrets.invite = ((await invite.json()) as { code: string }).code;

    const changed = await json(
      'PUT',
      '/api/auth/password',
      { current_password: PASSWORD_1, new_password: PASSWORD_2 },
      cookie,
    );
    expect(changed.status).toBe(200);
    const session4 = sessionFrom(changed);
    secrets.session4 = session4;

    const revoked = await fetch(`${base}/api/auth/api-keys/${keyId}`, {
      method: 'DELETE',
      headers: { cookie: `session=${session4}` },
    });
    expect(revoked.status).toBe(200);
    expect((await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(
      401,
    );
    expect(
      (await fetch(`${base}/api/auth/logout`, { method: 'POST', headers: { cookie: `session=${session4}` } }))
        .status,
    ).toBe(200);

    expect(await proc.stop('SIGTERM')).toBe(0);
    const logs = proc.output();
    const stored = dialect === 'postgres' ? await dumpPostgres(postgres?.url ?? '') : '';
    const files = readTree(dataDir);

    // the dumps really contain the account and the key's display prefix (so the search is meaningful)
    expect(logs).toMatch(/"level":20/);
    expect(logs).toContain('/api/auth/api-keys');
    const database = dialect === 'postgres' ? stored : files;
    expect(database).toContain('secret-owner@example.test');
    expect(database).toContain(key.slice(0, 12));
    for (const [name, secret] of Object.entries(secrets)) {
      expect(logs.includes(secret), `${name} in logs`).toBe(false);
      expect(files.includes(secret), `${name} in data dir`).toBe(false);
      expect(stored.includes(secret), `${name} in database`).toBe(false);
    }
  });
});
