import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/db.ts';
import { createTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { REPO_ROOT, runKeytally, startKeytally } from '../helpers/process.ts';

describe('keytally serve as a process', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = () => {
    const dir = makeTempDir();
    dirs.push(dir);
    return dir;
  };

  it('starts on the embedded default, answers /healthz and /readyz, creates every table, exits 0 on SIGTERM', async () => {
    const dataDir = tempDir();
    const proc = await startKeytally({ KEYTALLY_DATA_DIR: dataDir });
    expect((await fetch(`${proc.baseUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${proc.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', database: 'sqlite' });
    expect(await proc.stop('SIGTERM')).toBe(0);
    // A clean start prints only keytally's own log lines, no library deprecation warnings.
    expect(proc.output()).not.toMatch(/DeprecationWarning|FSTDEP/);

    const sqlite = new Database(path.join(dataDir, 'keytally.db'), { readonly: true });
    const tables = sqlite
      .prepare(
        "select name from sqlite_master where type = 'table' and name not like 'kysely_%' and name not like 'sqlite_%'",
      )
      .all()
      .map((row) => (row as { name: string }).name)
      .sort();
    sqlite.close();
    expect(tables).toEqual(
      expect.arrayContaining([
        'api_keys',
        'invites',
        'sessions',
        'usage_records',
        'usage_rollups_hourly',
        'users',
      ]),
    );
    const secret = fs.statSync(path.join(dataDir, '.hmac_secret'));
    expect(secret.mode & 0o777).toBe(0o600);
  });

  describe('on PostgreSQL', () => {
    let postgres: TestPostgres;
    afterAll(async () => {
      await postgres?.cleanup();
    });

    it('serves, and a second start applies no migration', async () => {
      postgres = await createTestPostgres();
      const env = { KEYTALLY_DATA_DIR: tempDir(), KEYTALLY_DATABASE_URL: postgres.url };
      const first = await startKeytally(env);
      const ready = await fetch(`${first.baseUrl}/readyz`);
      expect(await ready.json()).toMatchObject({ status: 'ready', database: 'postgres' });
      expect(await first.stop('SIGTERM')).toBe(0);
      expect(first.output()).toContain('applied migrations');

      const second = await startKeytally(env);
      expect((await fetch(`${second.baseUrl}/readyz`)).status).toBe(200);
      expect(await second.stop('SIGTERM')).toBe(0);
      expect(second.output()).not.toContain('applied migrations');
    });
  });

  it('exits 2 with one line naming KEYTALLY_PORT when the port is invalid', async () => {
    const proc = runKeytally(['serve'], { KEYTALLY_PORT: 'abc', KEYTALLY_DATA_DIR: tempDir() });
    expect(await proc.exited).toBe(2);
    const lines = proc.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('KEYTALLY_PORT');
  });

  it('calls a mistyped command an unknown command instead of starting or blaming serve', async () => {
    const dataDir = tempDir();
    const proc = runKeytally(['sever'], { KEYTALLY_PORT: '0', KEYTALLY_DATA_DIR: dataDir });
    expect(await proc.exited).toBe(1);
    const [first] = proc.output().trim().split('\n');
    expect(first).toBe("error: unknown command 'sever' (see `keytally --help`)");
    expect(fs.existsSync(path.join(dataDir, 'keytally.db'))).toBe(false);
  });

  it('gives one line naming the database file when the data dir cannot be created', async () => {
    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, '');
    const proc = runKeytally(['serve'], { KEYTALLY_PORT: '0', KEYTALLY_DATA_DIR: path.join(file, 'sub') });
    expect(await proc.exited).toBe(1);
    const lines = proc.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^keytally: cannot open SQLite database .*a-file\/sub\/keytally\.db: ENOTDIR/);
  });

  it('gives one clear line and a non-zero exit when the database is unreachable', async () => {
    const proc = runKeytally(['serve'], {
      KEYTALLY_PORT: '0',
      KEYTALLY_DATA_DIR: tempDir(),
      KEYTALLY_DATABASE_URL: 'postgres://nobody:secret-pw@127.0.0.1:1/none',
    });
    const code = await proc.exited;
    expect(code).not.toBe(0);
    const lines = proc.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/cannot connect to PostgreSQL/);
    expect(lines[0]).not.toContain('secret-pw');
    expect(proc.output()).not.toMatch(/\n\s+at /);
  });

  it('prints its version', async () => {
    const proc = runKeytally(['--version'], {});
    expect(await proc.exited).toBe(0);
    const { version } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(proc.output().trim()).toBe(version);
  });

  it('documents every setting in `keytally serve --help`', async () => {
    const proc = runKeytally(['serve', '--help'], {});
    expect(await proc.exited).toBe(0);
    for (const variable of [
      'KEYTALLY_PORT',
      'KEYTALLY_DATABASE_URL',
      'KEYTALLY_USAGE_FLUSH_MS',
      'KEYTALLY_CONFIG',
    ]) {
      expect(proc.output()).toContain(variable);
    }
  });
});
