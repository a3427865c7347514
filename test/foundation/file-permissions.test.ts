import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DIALECTS, makeTempDir } from '../helpers/db.ts';
import { createTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startKeytally } from '../helpers/process.ts';

const LEGACY_KEY = 'legacy-key-for-file-permissions';

function mode(file: string): string {
  return `0${(fs.statSync(file).mode & 0o777).toString(8)}`;
}

/** Every file and folder under `dir` with its mode, relative names. */
function modesUnder(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    result[path.relative(dir, full)] = mode(full);
  }
  return result;
}

async function chat(baseUrl: string): Promise<void> {
  const response = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${LEGACY_KEY}` },
    body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'hello' }] }),
  });
  expect(response.status).toBe(200);
  await response.text();
}

/** Files at rest are for keytally only (decisions.md section 11): checked on the real files. */
describe('file permissions', () => {
  const dirs: string[] = [];
  let postgres: TestPostgres | undefined;
  afterAll(async () => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    await postgres?.cleanup();
  });
  const parentDir = () => {
    const dir = makeTempDir();
    dirs.push(dir);
    return dir;
  };

  for (const dialect of DIALECTS) {
    it(`${dialect}: a new data dir is 0700 and every file in it 0600, journal included`, async () => {
      const dataDir = path.join(parentDir(), 'data');
      const env: Record<string, string> = {
        KEYTALLY_DATA_DIR: dataDir,
        KEYTALLY_API_KEYS: LEGACY_KEY,
        // Long enough that the journal segment is still there when the files are looked at.
        KEYTALLY_USAGE_FLUSH_MS: '600000',
      };
      if (dialect === 'postgres') {
        postgres = await createTestPostgres();
        env.KEYTALLY_DATABASE_URL = postgres.url;
      }
      const proc = await startKeytally(env);
      try {
        await chat(proc.baseUrl);
        expect(mode(dataDir)).toBe('0700');
        const modes = modesUnder(dataDir);
        const expected: Record<string, string> = { '.hmac_secret': '0600', 'usage-journal': '0700' };
        if (dialect === 'sqlite') {
          // Open in WAL mode: the -wal and -shm files exist while the server runs.
          Object.assign(expected, {
            'keytally.db': '0600',
            'keytally.db-wal': '0600',
            'keytally.db-shm': '0600',
          });
        }
        expect(modes).toMatchObject(expected);
        const segments = Object.keys(modes).filter((name) => name.startsWith('usage-journal/'));
        expect(segments.length).toBeGreaterThan(0);
        for (const [name, fileMode] of Object.entries(modes)) {
          expect(`${name} ${fileMode}`).toBe(
            `${name} ${fs.statSync(path.join(dataDir, name)).isDirectory() ? '0700' : '0600'}`,
          );
        }
      } finally {
        expect(await proc.stop('SIGTERM')).toBe(0);
      }
      expect(proc.output()).not.toContain('tightened');
    });
  }

  it('tightens an existing data dir and its files at start-up, with one log line', async () => {
    const dataDir = path.join(parentDir(), 'data');
    fs.mkdirSync(dataDir, { mode: 0o755 });
    fs.chmodSync(dataDir, 0o755);
    const dbFile = path.join(dataDir, 'keytally.db');
    fs.writeFileSync(dbFile, '', { mode: 0o644 });
    fs.writeFileSync(path.join(dataDir, '.hmac_secret'), `${'ab'.repeat(32)}\n`, { mode: 0o644 });
    fs.chmodSync(dbFile, 0o644);
    fs.chmodSync(path.join(dataDir, '.hmac_secret'), 0o644);

    const proc = await startKeytally({ KEYTALLY_DATA_DIR: dataDir, KEYTALLY_API_KEYS: LEGACY_KEY });
    try {
      await chat(proc.baseUrl);
      expect(modesUnder(dataDir)).toMatchObject({
        '.hmac_secret': '0600',
        'keytally.db': '0600',
        'keytally.db-wal': '0600',
        'keytally.db-shm': '0600',
      });
      expect(mode(dataDir)).toBe('0700');
    } finally {
      expect(await proc.stop('SIGTERM')).toBe(0);
    }
    const lines = proc
      .output()
      .split('\n')
      .filter((line) => line.includes('tightened'));
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] ?? '{}') as { tightened: string[] };
    expect(line.tightened).toEqual([
      `${dataDir} (was 0755)`,
      `${path.join(dataDir, '.hmac_secret')} (was 0644)`,
      `${dbFile} (was 0644)`,
    ]);

    // The next start finds nothing to tighten.
    const again = await startKeytally({ KEYTALLY_DATA_DIR: dataDir });
    expect(await again.stop('SIGTERM')).toBe(0);
    expect(again.output()).not.toContain('tightened');
  });
});
