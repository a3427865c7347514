import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { UsageRow } from './ingest.repository.ts';
import { type JournalFiles, type JournalSegment, JournalWriteError, UsageJournal } from './journal.ts';
import { usageRowId } from './row-id.ts';
import { createSqliteWriter } from './sqlite-writer-client.ts';
import { type Batch, createUsageCommits } from './usage-commits.ts';

/** A finished request's usage, as the gateway hands it to the recorder (id assigned on record). */
export type UsageEvent = Omit<UsageRow, 'id'> & { id?: string };

export interface RecorderStats {
  /** Rows journaled but not yet committed to the database. */
  queueDepth: number;
  /** Of those, rows held in memory (the rest are read back from the journal). */
  rowsInMemory: number;
  journalBytes: number;
  /** Rows inserted into the database (a replayed row that was already stored is not counted). */
  rowsWritten: number;
  flushFailures: number;
  /** Rows PostgreSQL refused as data (set aside in usage-refused.jsonl, logged), not retried. */
  rowsRefused: number;
}

export interface UsageRecorder {
  /** Resolves once the row is in the journal (written, in the page cache): the request may complete. */
  record(event: UsageEvent): Promise<void>;
  /**
   * Notes that an API key authenticated a request. `api_keys.last_used` is written from here,
   * coalesced (at most once a minute per key), never synchronously on the request path.
   */
  noteKeyUsed(keyId: string, at: number): void;
  /** Writes everything pending now (tests; no sleeps). */
  flushNow(): Promise<void>;
  /** Final drain; idempotent. */
  close(): Promise<void>;
  stats(): RecorderStats;
  /** Called with the duration in seconds of every committed batch; returns an unsubscribe. */
  onFlush?(listener: (seconds: number, rows: number) => void): () => void;
  /**
   * Why usage cannot be recorded right now (the journal cannot be appended: a full disk, lost
   * permissions), or null. While set, /readyz answers 503 and inference requests are refused.
   */
  journalProblem?(): string | null;
}

export interface RecorderOptions {
  db: Db;
  logger: Logger;
  flushMs: number;
  /**
   * Rows that seal a batch before `flushMs` is up (BATCH_ROWS by default). Smaller batches spread a
   * PostgreSQL server's work in shorter bursts, for more CPU in all (bench/README.md: 250 rows on
   * this 2-core machine, database included, lowered keytally's p99 by ~3 ms and its req/s by ~10%).
   */
  batchRows?: number;
  dataDir: string;
  /**
   * SQLite only: commit in a worker thread with its own connection (sqlite-writer.ts) instead of on
   * the event loop. The server turns it on; in-process tests keep the simpler path.
   */
  sqliteWorker?: boolean;
  /** The journal's file boundary (tests inject a full disk); node:fs by default. */
  journalFiles?: JournalFiles;
}

// What a refused request tells its client to wait: the journal is probed again every flush (1 s).
const JOURNAL_RETRY_AFTER_S = 5;

export const BATCH_ROWS = 1000;
// One transaction commits at most this many backlogged rows (5 batches): ~2.5 MB of parameters.
const COMMIT_ROWS_MAX = 5000;
// PostgreSQL transactions of a backlog committed at once (bench/README.md, session 7).
const PG_COMMIT_LANES = 2;
// Rows kept in memory for the next flushes: two batches (~1-2 MB of row objects). Past that (the
// database is slow or down) new batches are only on disk and are read back from the journal when
// their turn comes, so memory stays flat however long the outage lasts. With 20,000 rows the
// 30-s PostgreSQL outage test grew RSS by 54 MB; with 2,000, by 39 MB.
const MEMORY_ROWS_MAX = 2_000;
// last_used is accounting-grade, not security-grade: one write per key per minute at most.
const KEY_USE_COALESCE_MS = 60_000;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

/**
 * The journaled recorder of decisions.md section 5. `record` appends the row to the journal before
 * the request completes; every `flushMs` or `batchRows` rows the journal segment is sealed into a batch;
 * batches are committed in order (raw rows + rollups in one transaction, idempotent by row id) and
 * their segment deleted. Segments left by a previous process are replayed at start-up.
 */
export async function createUsageRecorder(options: RecorderOptions): Promise<UsageRecorder> {
  const { db, logger } = options;
  const journal = new UsageJournal(options.dataDir, options.journalFiles);
  const batchRows = options.batchRows ?? BATCH_ROWS;
  const batches: Batch[] = journal.open().map((segment) => ({ segment, rows: null }));
  if (batches.length > 0) {
    logger.info({ segments: batches.length, bytes: journal.bytes }, 'replaying the usage journal');
  }
  let activeRows: UsageRow[] | null = [];
  let rowsInMemory = 0;
  let queueDepth = 0;
  let rowsWritten = 0;
  let flushFailures = 0;
  let consecutiveFailures = 0;
  let draining: Promise<void> | null = null;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const listeners = new Set<(seconds: number, rows: number) => void>();
  const sqliteFile = db.dialect === 'sqlite' ? db.describe.replace(/^sqlite:/, '') : ':memory:';
  const writer =
    options.sqliteWorker && sqliteFile !== ':memory:' ? createSqliteWriter(path.resolve(sqliteFile)) : null;
  // A writer thread, or PostgreSQL, reads the rows from the journal segments: none are kept in memory.
  const rowsFromJournal = writer !== null || db.dialect === 'postgres';
  const commits = createUsageCommits({ db, logger, dataDir: options.dataDir, journal, writer });
  if (rowsFromJournal) activeRows = null;
  const keyLastWritten = new Map<string, number>();
  const keysPending = new Map<string, number>();

  // Rows recorded in one turn of the event loop are written together, in one write(2), right after
  // it (setImmediate); their requests complete once it is done, or fail with it: a row is in the
  // journal exactly when its request gets its answer.
  interface WriteGroup {
    rows: UsageRow[];
    promise: Promise<void>;
    resolve: () => void;
    reject: (error: unknown) => void;
  }
  let group: WriteGroup | null = null;
  /** Set while the journal cannot be appended; cleared by the next write or probe that succeeds. */
  let journalFailure: { message: string; since: number; failedRows: number } | null = null;

  const journalRecovered = () => {
    if (!journalFailure) return;
    logger.info(
      { failedRows: journalFailure.failedRows, outageMs: Date.now() - journalFailure.since },
      'the usage journal is writable again; inference requests are accepted',
    );
    journalFailure = null;
  };

  const journalFailed = (error: unknown, rows: UsageRow[]) => {
    // The rows were dropped from the journal: forget them here too (their requests answer 503).
    queueDepth = Math.max(0, queueDepth - rows.length);
    if (activeRows) {
      const dropped = new Set(rows);
      const kept = activeRows.filter((row) => !dropped.has(row));
      rowsInMemory -= activeRows.length - kept.length;
      activeRows = kept;
    }
    const cause = error instanceof JournalWriteError && error.cause !== undefined ? error.cause : error;
    const message = (cause as Error)?.message ?? String(cause);
    if (journalFailure) {
      journalFailure.failedRows += rows.length;
      return;
    }
    journalFailure = { message, since: Date.now(), failedRows: rows.length };
    // Once per failure, not per request: requests are refused up front from here on.
    logger.error(
      { err: error, journal: journal.dir },
      'cannot write the usage journal: refusing inference requests (503) until it is writable again',
    );
  };

  const writeGroup = () => {
    const current = group;
    group = null;
    if (!current) return;
    try {
      journal.write();
      journalRecovered();
      current.resolve();
    } catch (error) {
      journalFailed(error, current.rows);
      current.reject(
        new ServiceUnavailableError(
          'usage cannot be recorded right now (the usage journal is not writable); retry shortly',
          {
            code: 'usage_journal_unavailable',
            headers: { 'retry-after': String(JOURNAL_RETRY_AFTER_S) },
            cause: error instanceof JournalWriteError ? error.cause : error,
          },
        ),
      );
    }
  };

  /** While the journal is failing: is it writable again? */
  const probeJournal = () => {
    if (!journalFailure) return;
    try {
      journal.probe();
      journalRecovered();
    } catch {
      // Still failing; logged once when it began.
    }
  };

  const seal = () => {
    writeGroup();
    let segment: JournalSegment | null;
    try {
      segment = journal.seal();
    } catch (error) {
      logger.error({ err: error, journal: journal.dir }, 'cannot seal the usage journal segment');
      return;
    }
    if (!segment) return;
    batches.push({ segment, rows: activeRows });
    activeRows = rowsFromJournal ? null : [];
  };

  const writeKeyUses = async () => {
    if (keysPending.size === 0) return;
    const touched = [...keysPending];
    keysPending.clear();
    try {
      for (const [id, at] of touched) {
        await db.kysely.updateTable('api_keys').set({ last_used: at }).where('id', '=', id).execute();
      }
    } catch (error) {
      for (const [id, at] of touched) keysPending.set(id, Math.max(at, keysPending.get(id) ?? 0));
      throw error;
    }
  };

  /** The batches of one transaction, from `from` on: up to COMMIT_ROWS_MAX rows (one while failing). */
  const takeGroup = (from: number): Batch[] => {
    const taken: Batch[] = [];
    let takenRows = 0;
    for (let i = from; i < batches.length; i += 1) {
      const batch = batches[i] as Batch;
      // While the database keeps failing, each retry probes with one batch: reading and encoding
      // 5,000 backlogged rows per failed attempt only churns memory (the outage test's RSS).
      if (taken.length > 0 && consecutiveFailures > 0) break;
      if (taken.length > 0 && takenRows + batch.segment.rows > COMMIT_ROWS_MAX) break;
      taken.push(batch);
      takenRows += batch.segment.rows;
    }
    return taken;
  };

  /** Commits one group; its batches leave the queue and the journal once it is committed. */
  const commitGroup = async (taken: Batch[]): Promise<void> => {
    const started = performance.now();
    const committed = await commits.commit(taken);
    const seconds = (performance.now() - started) / 1000;
    for (const batch of taken) {
      batches.splice(batches.indexOf(batch), 1);
      journal.remove(batch.segment);
      if (batch.rows) rowsInMemory -= batch.rows.length;
      queueDepth = Math.max(0, queueDepth - batch.segment.rows);
    }
    rowsWritten += committed;
    for (const listener of listeners) listener(seconds, committed);
  };

  /**
   * Commits batches oldest first until none is left; throws on the first failure. When a backlog has
   * built up (a slow or returning database), up to COMMIT_ROWS_MAX rows of consecutive batches go in
   * one transaction: fewer round trips, and the rollup deltas compress across the whole span. On
   * PostgreSQL a backlog goes in PG_COMMIT_LANES transactions at once, on as many connections: one
   * backend per core instead of one core idle while the other commits (a later group committed
   * before an earlier one failed is harmless: rows are idempotent by id, the earlier is retried).
   */
  const commitAll = async () => {
    for (;;) {
      const lanes = db.dialect === 'postgres' && consecutiveFailures === 0 ? PG_COMMIT_LANES : 1;
      const groups: Batch[][] = [];
      for (let from = 0; groups.length < lanes && from < batches.length; ) {
        const group = takeGroup(from);
        groups.push(group);
        from += group.length;
      }
      if (groups.length === 0) break;
      // Every lane settles before a failure is thrown: none is left running into the retry.
      const failure = (await Promise.allSettled(groups.map(commitGroup))).find(
        (result) => result.status === 'rejected',
      );
      if (failure) throw failure.reason;
    }
    await writeKeyUses();
  };

  const drain = (): Promise<void> => {
    if (draining) return draining;
    draining = commitAll()
      .then(() => {
        consecutiveFailures = 0;
      })
      .finally(() => {
        draining = null;
      });
    return draining;
  };

  /** Background drain: a failure is logged and retried with backoff; the rows wait on disk. */
  const kick = () => {
    if (retryTimer) return;
    drain().catch((error: unknown) => {
      flushFailures += 1;
      consecutiveFailures += 1;
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (consecutiveFailures - 1));
      logger.warn(
        { err: error, pendingRows: queueDepth, journalBytes: journal.bytes, retryInMs: delay },
        'usage flush failed; rows stay in the journal and are retried',
      );
      if (closed) return;
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        kick();
      }, delay);
      retryTimer.unref();
    });
  };

  for (const batch of batches) queueDepth += batch.segment.rows;
  const timer = setInterval(() => {
    probeJournal();
    seal();
    if (batches.length > 0 || keysPending.size > 0) kick();
  }, options.flushMs);
  timer.unref();
  if (batches.length > 0) kick();

  return {
    record(event) {
      if (closed) return Promise.reject(new Error('usage recorder is closed'));
      const row: UsageRow = event.id ? (event as UsageRow) : { ...event, id: usageRowId(event.created_at) };
      const inSegment = journal.append(row);
      queueDepth += 1;
      if (activeRows) {
        if (rowsInMemory < MEMORY_ROWS_MAX) {
          activeRows.push(row);
          rowsInMemory += 1;
        } else {
          rowsInMemory -= activeRows.length;
          activeRows = null;
        }
      }
      if (!group) {
        let resolve = () => {};
        let reject: (error: unknown) => void = () => {};
        const promise = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        group = { rows: [], promise, resolve, reject };
        setImmediate(writeGroup);
      }
      const current = group;
      current.rows.push(row);
      if (inSegment >= batchRows) {
        seal();
        kick();
      }
      return current.promise;
    },
    noteKeyUsed(keyId, at) {
      const last = keyLastWritten.get(keyId);
      if (last !== undefined && at - last < KEY_USE_COALESCE_MS) return;
      keyLastWritten.set(keyId, at);
      keysPending.set(keyId, Math.max(at, keysPending.get(keyId) ?? 0));
    },
    async flushNow() {
      probeJournal();
      seal();
      if (draining) await draining.catch(() => {});
      await drain();
      await journal.removed();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      clearTimeout(retryTimer);
      retryTimer = undefined;
      seal();
      try {
        if (draining) await draining.catch(() => {});
        await drain();
      } catch (error) {
        logger.error(
          { err: error, pendingRows: queueDepth, journal: journal.dir },
          'could not write all usage at shutdown; it stays in the journal and is replayed at the next start',
        );
      }
      journal.close();
      await journal.removed();
      await writer?.close();
    },
    stats() {
      return {
        queueDepth,
        rowsInMemory,
        journalBytes: journal.bytes,
        rowsWritten,
        flushFailures,
        rowsRefused: commits.refused(),
      };
    },
    onFlush(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    journalProblem() {
      return journalFailure ? `the usage journal is not writable (${journalFailure.message})` : null;
    },
  };
}
