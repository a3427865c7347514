import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { applySqlitePragmas } from '../db/sqlite-pragmas.ts';
import { readSegmentFile } from './journal.ts';
import { insertUsageRowsSqlite, type UsageRow } from './sqlite-ingest.ts';

/**
 * The SQLite usage writer thread (started by recorder.ts): its own better-sqlite3 connection to the
 * same file (WAL: the server's connection keeps reading, writers wait on the busy timeout), so the
 * synchronous inserts and commits never block the server's event loop. It is sent the sealed journal
 * segments' file names and reads the rows itself: copying 1000 row objects into a message cost the
 * event loop ~2 ms per batch. It loads better-sqlite3 and the ingest statements only (no Kysely, pg
 * or zod): the thread costs ~10 MB of RSS rather than ~40 MB.
 */
export interface WriterRequest {
  id: number;
  files: string[];
}

export type WriterReply = { id: number; ok: true; rows: number } | { id: number; ok: false; message: string };

// 1000-row transactions: ~11 µs a row, against ~25 µs in 64-row ones (bench/proxy); the length of
// a transaction no longer matters to request latency here.
const TRANSACTION_ROWS = 1000;

const port = parentPort;
if (port) {
  const { file } = workerData as { file: string };
  const database = new SqliteDatabase(file);
  applySqlitePragmas(database);
  const insert = database.transaction((rows: UsageRow[]) => insertUsageRowsSqlite(database, rows));
  port.on('message', (message: WriterRequest | 'close') => {
    if (message === 'close') {
      database.close();
      port.close();
      return;
    }
    try {
      const rows = message.files.flatMap((segment) => readSegmentFile(segment));
      for (let i = 0; i < rows.length; i += TRANSACTION_ROWS) insert(rows.slice(i, i + TRANSACTION_ROWS));
      port.postMessage({ id: message.id, ok: true, rows: rows.length } satisfies WriterReply);
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
