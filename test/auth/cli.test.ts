import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/server/auth/hash.ts';
import { type Db, openDatabase } from '../../src/server/db/connection.ts';
import { runCliInProcess as runInProcess } from '../helpers/cli.ts';
import { DIALECTS, makeTempDir } from '../helpers/db.ts';
import { createTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { runKeytally } from '../helpers/process.ts';

const HMAC = 'cli-test-hmac-secret-0123456789abcdef0123';
const PASSWORD = 'a long enough password';
const DAY = 86_400_000;

describe.each(DIALECTS)('keytally user / key commands on %s', (dialect) => {
  let dataDir = '';
  let postgres: TestPostgres | undefined;
  let env: Record<string, string> = {};
  let db: Db;

  beforeAll(async () => {
    dataDir = makeTempDir();
    env = { KEYTALLY_DATA_DIR: dataDir, KEYTALLY_HMAC_SECRET: HMAC };
    if (dialect === 'postgres') {
      postgres = await createTestPostgres();
      env.KEYTALLY_DATABASE_URL = postgres.url;
    }
  });
  afterAll(async () => {
    await db?.close();
    await postgres?.cleanup();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** The real `keytally` binary in a child process (slow on a busy machine: used sparingly). */
  const spawnCli = async (...args: string[]) => {
    const proc = runKeytally(args, env);
    const code = await proc.exited;
    return { code, output: proc.output() };
  };
  /** The same commander program in this process, with this block's environment. */
  const run = (...args: string[]) => runInProcess(args, env);
  const openDb = async () => {
    db ??= await openDatabase(env.KEYTALLY_DATABASE_URL ?? path.join(dataDir, 'keytally.db'));
    return db;
  };

  let keyId = '';
  let key = '';

  it('user create: the first user is admin, --admin makes admins, others are users', async () => {
    const first = await run(
      'user',
      'create',
      '--email',
      'Ops@Example.test',
      '--name',
      'Ops',
      '--password',
      PASSWORD,
    );
    expect(first.code).toBe(0);
    expect(first.output).toMatch(/created user ops@example\.test .*role admin/);
    const second = await run(
      'user',
      'create',
      '--email',
      'dev@example.test',
      '--name',
      'Dev',
      '--password',
      PASSWORD,
    );
    expect(second.output).toMatch(/role user/);
    const third = await run(
      'user',
      'create',
      '--email',
      'boss@example.test',
      '--name',
      'Boss',
      '--password',
      PASSWORD,
      '--admin',
    );
    expect(third.output).toMatch(/role admin/);
  });

  it('user create refuses duplicates and weak passwords with one clear line and exit 1', async () => {
    const duplicate = await run(
      'user',
      'create',
      '--email',
      'dev@example.test',
      '--name',
      'X',
      '--password',
      PASSWORD,
    );
    expect(duplicate.code).toBe(1);
    expect(duplicate.output).toContain('keytally: a user with email dev@example.test already exists');
    const weak = await run(
      'user',
      'create',
      '--email',
      'weak@example.test',
      '--name',
      'W',
      '--password',
      'short',
    );
    expect(weak.code).toBe(1);
    expect(weak.output.trim()).toBe(
      'keytally: --password must be at least 12 characters (add --weak-password to accept a shorter one)',
    );
    const missing = await run('user', 'create', '--email', 'x@example.test');
    expect(missing.code).not.toBe(0);
    expect(missing.output).toMatch(/--name/);
  });

  it('key create prints the key once; only its HMAC is stored, with the expiry asked for', async () => {
    const before = Date.now();
    const created = await run(
      'key',
      'create',
      '--user',
      'ops@example.test',
      '--name',
      'ci-runner',
      '--expires',
      '90d',
    );
    expect(created.code).toBe(0);
    const lines = created.output.split('\n').filter((line) => /^kt-[0-9a-f]{64}$/.test(line));
    expect(lines).toHaveLength(1);
    key = lines[0] ?? '';
    const row = await (await openDb()).kysely
      .selectFrom('api_keys')
      .selectAll()
      .where('key_hash', '=', hashSecret(HMAC, key))
      .executeTakeFirstOrThrow();
    keyId = row.id;
    // new keys get inference + usage (decisions.md section 9)
    expect(row).toMatchObject({
      name: 'ci-runner',
      key_prefix: key.slice(0, 12),
      revoked_at: null,
      scopes: 'inference,usage',
    });
    expect(row.expires_at).toBeGreaterThanOrEqual(before + 90 * DAY);
    expect(row.expires_at).toBeLessThanOrEqual(Date.now() + 90 * DAY);
    const bad = await run('key', 'create', '--user', 'ops@example.test', '--name', 'x', '--expires', 'soon');
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('--expires: "soon" is not a duration; use e.g. 90d, 12h or 1y');
    const scoped = await run(
      'key',
      'create',
      '--user',
      'ops@example.test',
      '--name',
      'k',
      '--scopes',
      'keys,usage',
    );
    expect(scoped.code).toBe(0);
    const scopedRow = await (await openDb()).kysely
      .selectFrom('api_keys')
      .select('scopes')
      .where('name', '=', 'k')
      .executeTakeFirstOrThrow();
    expect(scopedRow.scopes).toBe('usage,keys');
    const badScope = await run(
      'key',
      'create',
      '--user',
      'ops@example.test',
      '--name',
      'x',
      '--scopes',
      'all',
    );
    expect(badScope.code).toBe(1);
    expect(badScope.output).toContain('--scopes: "all" must list inference, usage, keys or admin');
    const nobody = await spawnCli('key', 'create', '--user', 'nobody@example.test', '--name', 'x');
    expect(nobody.code).toBe(1);
    expect(nobody.output).toContain('keytally: no user with email nobody@example.test');
  });

  it('key list shows ids and prefixes, never keys, and filters by --user', async () => {
    await run('key', 'create', '--user', 'dev@example.test', '--name', 'dev-key');
    const all = await run('key', 'list');
    expect(all.code).toBe(0);
    expect(all.output).toContain(keyId);
    expect(all.output).toContain(key.slice(0, 12));
    expect(all.output).toContain('dev-key');
    expect(all.output).not.toContain(key);
    const onlyDev = await run('key', 'list', '--user', 'dev@example.test');
    expect(onlyDev.output).toContain('dev-key');
    expect(onlyDev.output).not.toContain(keyId);
  });

  it('key revoke sets the tombstone; unknown ids fail with exit 1', async () => {
    const revoked = await run('key', 'revoke', keyId);
    expect(revoked.code).toBe(0);
    // SQLite has no cross-process notification: the CLI says how long a running server may still
    // accept the key (its credential cache TTL) instead of promising "at once".
    expect(revoked.output.trim()).toBe(
      dialect === 'sqlite'
        ? `revoked key ${keyId}; a running keytally server refuses it within 10 s`
        : `revoked key ${keyId}`,
    );
    const row = await (await openDb()).kysely
      .selectFrom('api_keys')
      .select('revoked_at')
      .where('id', '=', keyId)
      .executeTakeFirstOrThrow();
    expect(row.revoked_at).not.toBeNull();
    const list = await run('key', 'list', '--user', 'ops@example.test');
    expect(list.output).toMatch(/revoked \d{4}-/);
    const again = await run('key', 'revoke', keyId);
    expect(again.code).toBe(1);
    expect(again.output).toContain('keytally: API key not found');
  });
});

describe('keytally user / key help', () => {
  it('documents the commands and their flags', async () => {
    const help = await runInProcess(['key', '--help'], {});
    expect(help.code).toBe(0);
    for (const command of ['create', 'list', 'revoke']) expect(help.output).toContain(command);
    const userHelp = await runInProcess(['user', 'create', '--help'], {});
    for (const flag of ['--email', '--name', '--password', '--admin'])
      expect(userHelp.output).toContain(flag);
  });
});
