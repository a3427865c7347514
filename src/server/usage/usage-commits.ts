import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';
import { insertUsageBatch, insertUsageJsonArrayPostgres, type UsageRow } from './ingest.repository.ts';
import { type JournalSegment, segmentsAsJsonArray, type UsageJournal } from './journal.ts';
import type { SqliteWriter } from './sqlite-writer-client.ts';

/** A sealed journal segment waiting for its commit. */
export interface Batch {
  segment: JournalSegment;
  /** The batch's rows when still in memory; null when they must be read from the journal. */
  rows: UsageRow[] | null;
}

/** How a group of batches reaches the database, per dialect (recorder.ts decides which and when). */
export interface UsageCommits {
  /** Commits the batches in one transaction (SQLite on the event loop: idempotent slices); returns the rows inserted. */
  commit(taken: Batch[]): Promise<number>;
  /** Rows the database refused as data, set aside (see commitAroundRefused). */
  refused(): number;
}

// ~3 ms of event loop per 64-row slice on a busy 2-core machine (250 rows: ~12 ms, the p99 of
// every request in flight; measured with bench/proxy).
const SQLITE_SLICE_ROWS = 64;
const SQLITE_BACKLOG_SLICE_ROWS = 1000;
const REFUSED_FILE = 'usage-refused.jsonl';

/** A PostgreSQL error about the data itself (class 22, or a NOT NULL / CHECK violation): retrying cannot help. */
function refusedAsData(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? '');
  return code.startsWith('22') || code === '23502' || code === '23514';
}

export function createUsageCommits(options: {
  db: Db;
  logger: Logger;
  dataDir: string;
  journal: UsageJournal;
  /** SQLite's writer thread, when it commits (it reads the segments itself). */
  writer: SqliteWriter | null;
}): UsageCommits {
  const { db, logger, journal, writer } = options;
  let rowsRefused = 0;

  /** Rows parsed here (in memory, or read from the journal) and committed from the event loop. */
  const commitRows = async (taken: Batch[]): Promise<number> => {
    const rows: UsageRow[] = [];
    for (const batch of taken) for (const row of batch.rows ?? journal.read(batch.segment)) rows.push(row);
    if (db.dialect === 'postgres') return commitAroundRefused(rows);
    // better-sqlite3 runs on the event loop: slices (each its own idempotent transaction) with a
    // turn of the loop between them keep one commit from stalling requests. With a backlog,
    // 1000-row slices: measured 19,900 vs 13,850 rows/s, at the price of ~4x longer stalls.
    const slice = taken.length > 1 ? SQLITE_BACKLOG_SLICE_ROWS : SQLITE_SLICE_ROWS;
    let inserted = 0;
    for (let i = 0; i < rows.length; i += slice) {
      inserted += await insertUsageBatch(db, rows.slice(i, i + slice));
      await new Promise((resolve) => setImmediate(resolve));
    }
    return inserted;
  };

  /** PostgreSQL: the segments' bytes as they are on disk (see insertUsageJsonArrayPostgres). */
  const commitJsonLines = async (taken: Batch[]): Promise<number> => {
    const files = await Promise.all(taken.map((batch) => fs.promises.readFile(batch.segment.file)));
    const array = segmentsAsJsonArray(files);
    let refused: unknown;
    if (array) {
      try {
        return await insertUsageJsonArrayPostgres(db, array);
      } catch (error) {
        if (!refusedAsData(error)) throw error;
        refused = error;
      }
    }
    // A segment ends in a torn line (a short write on a full disk), holds a line that is not a row,
    // or a row the database cannot hold: the parsing path skips what cannot be read and sets aside
    // what the database refuses.
    logger.warn(
      { err: refused, segments: taken.length },
      'the database refused a usage batch as data (a malformed journal line, or a value it cannot hold); committing what it accepts',
    );
    return commitRows(taken);
  };

  /**
   * PostgreSQL: commits the rows; when the database refuses some as data (a value it cannot hold),
   * halves the batch until each refused row is alone, commits the rest, and sets the refused rows
   * aside: retried forever, one row would hold up every row after it. They are kept, not dropped:
   * appended to usage-refused.jsonl in the data directory, each logged with the database's reason.
   */
  const commitAroundRefused = async (rows: UsageRow[]): Promise<number> => {
    try {
      return await insertUsageBatch(db, rows);
    } catch (error) {
      if (!refusedAsData(error)) throw error;
      if (rows.length > 1) {
        const half = rows.length >> 1;
        return (
          (await commitAroundRefused(rows.slice(0, half))) + (await commitAroundRefused(rows.slice(half)))
        );
      }
      const row = rows[0] as UsageRow;
      const file = path.join(options.dataDir, REFUSED_FILE);
      fs.appendFileSync(file, `${JSON.stringify(row)}\n`, { mode: 0o600 });
      rowsRefused += 1;
      logger.error(
        { err: error, id: row.id, file },
        'the database refused a usage row; it is set aside (not retried) so the rows after it are committed',
      );
      return 0;
    }
  };

  return {
    async commit(taken) {
      if (writer) {
        const result = await writer.insert(taken.map((batch) => batch.segment.file));
        if (result.skipped > 0) {
          logger.warn({ lines: result.skipped }, 'usage journal lines that are not whole rows were skipped');
        }
        return result.inserted;
      }
      return db.dialect === 'postgres' ? commitJsonLines(taken) : commitRows(taken);
    },
    refused: () => rowsRefused,
  };
}
