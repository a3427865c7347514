import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { secureDataDir } from './data-dir.ts';

describe('secureDataDir', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-data-dir-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('leaves a shared directory (sticky bit, like /tmp) as it is', () => {
    const shared = path.join(root, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    expect(secureDataDir(shared, 'postgres://db/keytally')).toEqual([]);
    expect(fs.statSync(shared).mode & 0o7777).toBe(0o1777);
  });

  it('creates missing parents 0700 and touches no SQLite file on PostgreSQL', () => {
    const dataDir = path.join(root, 'a', 'b');
    expect(secureDataDir(dataDir, 'postgres://db/keytally')).toEqual([]);
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(dataDir)).toEqual([]);
  });
});
