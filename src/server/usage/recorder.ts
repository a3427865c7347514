import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';
import { insertUsageBatch, type UsageRow } from './ingest.repository.ts';

/** A finished request's usage, as the gateway hands it to the recorder (id assigned on record). */
export type UsageEvent = Omit<UsageRow, 'id'> & { id?: string };

export interface UsageRecorder {
  /** Resolves once the row is durable enough that the request may complete. */
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
}

export interface RecorderOptions {
  db: Db;
  logger: Logger;
  flushMs: number;
  dataDir: string;
}

/**
 * Foundation recorder: batches in memory every `flushMs` or 1000 rows. The Gateway issue replaces it
 * with the journaled recorder of decisions.md section 5.
 */
export async function createUsageRecorder(options: RecorderOptions): Promise<UsageRecorder> {
  let pending: UsageRow[] = [];
  let flushing: Promise<void> = Promise.resolve();
  let closed = false;
  const keysUsed = new Map<string, number>();

  const flush = (): Promise<void> => {
    flushing = flushing.then(async () => {
      if (keysUsed.size > 0) {
        const touched = [...keysUsed];
        keysUsed.clear();
        for (const [id, at] of touched) {
          await options.db.kysely
            .updateTable('api_keys')
            .set({ last_used: at })
            .where('id', '=', id)
            .execute();
        }
      }
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      try {
        await insertUsageBatch(options.db, batch);
      } catch (error) {
        options.logger.error({ err: error, rows: batch.length }, 'usage flush failed; will retry');
        pending = batch.concat(pending);
      }
    });
    return flushing;
  };
  const timer = setInterval(() => void flush(), options.flushMs);
  timer.unref();

  return {
    async record(event) {
      pending.push({ ...event, id: event.id ?? randomUUID() });
      if (pending.length >= 1000) void flush();
    },
    noteKeyUsed(keyId, at) {
      keysUsed.set(keyId, Math.max(at, keysUsed.get(keyId) ?? 0));
    },
    flushNow: flush,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await flush();
    },
  };
}
