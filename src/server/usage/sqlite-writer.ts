import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { applySqlitePragmas } from '../db/sqlite-pragmas.ts';
import { insertUsageSegmentsSqlite } from './sqlite-ingest.ts';

/**
 * The SQLite usage writer thread (started by recorder.ts): its own better-sqlite3 connection to the
 * same file (WAL: the server's connection keeps reading, writers wait on the busy timeout), so the
 * synchronous inserts and commits never block the server's event loop. It is sent the sealed journal
 * segments' file names and hands their lines to SQLite to parse (insertUsageSegmentsSqlite): no row
 * becomes a JavaScript object, so the thread's heap stays small. It loads better-sqlite3 and
 * the ingest statements only (no Kysely, pg or zod).
 */
export interface WriterRequest {
  id: number;
  files: string[];
}

export type WriterReply =
  | { id: number; ok: true; inserted: number; skipped: number }
  | { id: number; ok: false; message: string };

const port = parentPort;
if (port) {
  const { file } = workerData as { file: string };
  const database = new SqliteDatabase(file);
  applySqlitePragmas(database);
  const insert = database.transaction((segments: Buffer[]) => insertUsageSegmentsSqlite(database, segments));
  port.on('message', (message: WriterRequest | 'close') => {
    if (message === 'close') {
      database.close();
      port.close();
      return;
    }
    try {
      const { inserted, skipped } = insert(message.files.map((segment) => fs.readFileSync(segment)));
      port.postMessage({ id: message.id, ok: true, inserted, skipped } satisfies WriterReply);
    } catch (error) {
      port.postMessage({
        id: message.id,
        ok: false,
        message: (error as Error)?.message ?? String(error),
      } satisfies WriterReply);
    }
  });
  port.postMessage('ready');
}
