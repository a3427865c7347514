import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { applySqlitePragmas } from './sqlite-pragmas.ts';

describe('applySqlitePragmas', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sets every connection to WAL, NORMAL sync, foreign keys, a 5-s busy wait and in-memory temp files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-pragmas-'));
    dirs.push(dir);
    const database = new SqliteDatabase(path.join(dir, 'keytally.db'));
    try {
      applySqlitePragmas(database);
      const read = (name: string) => database.pragma(name, { simple: true });
      expect(read('journal_mode')).toBe('wal');
      expect(read('synchronous')).toBe(1);
      expect(read('foreign_keys')).toBe(1);
      expect(read('busy_timeout')).toBe(5000);
      // 2 = MEMORY: statement journals (one per insert inside the writer's transaction) stay in
      // memory instead of a temporary file written with pwrite(2) per page.
      expect(read('temp_store')).toBe(2);
    } finally {
      database.close();
    }
  });
});
