import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Db, openDatabase } from '../../src/server/db/connection.ts';
import type { DialectName } from '../../src/server/db/dialect.ts';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import { createTestPostgres } from './postgres.ts';

/** Every repository test runs on both. */
export const DIALECTS: readonly DialectName[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  dialect: DialectName;
  /** A URL keytally accepts as KEYTALLY_DATABASE_URL (SQLite path or postgres://). */
  url: string;
  /** A temporary directory, usable as KEYTALLY_DATA_DIR. */
  dataDir: string;
  /** An open, migrated handle (unless created with { migrate: false }). */
  db: Db;
  close(): Promise<void>;
}

export function makeTempDir(prefix = 'keytally-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function createTestDatabase(
  dialect: DialectName,
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  const dataDir = makeTempDir();
  let url: string;
  let cleanup = async () => {};
  if (dialect === 'sqlite') {
    url = path.join(dataDir, 'keytally.db');
  } else {
    const postgres = await createTestPostgres();
    url = postgres.url;
    cleanup = postgres.cleanup;
  }
  const db = await openDatabase(url);
  if (options.migrate !== false) await migrateToLatest(db);
  return {
    dialect,
    url,
    dataDir,
    db,
    async close() {
      await db.close().catch(() => {});
      await cleanup();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
