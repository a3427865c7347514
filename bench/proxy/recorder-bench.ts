// `--parts=recorder`: the usage recorder alone, rows per second from record() to committed rows.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/server/db/connection.ts';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createUsageRecorder, type UsageEvent } from '../../src/server/usage/recorder.ts';
import { freshPostgres } from './processes.ts';

async function countRows(databaseUrl: string): Promise<number> {
  const db = await openDatabase(databaseUrl);
  try {
    const row = await db.kysely
      .selectFrom('usage_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  } finally {
    await db.close();
  }
}

export interface RecorderMeasurement {
  dialect: 'sqlite' | 'postgres';
  rows: number;
  /** record() for every row (journal append) plus the flush to the database. */
  rowsPerSecond: number;
  /** The journal append alone. */
  appendRowsPerSecond: number;
  committed: number;
}

const RECORD_WAVE = 64;

/** Row i of the bench's usage: 100 active keys of 50 users and 20 models within each hour, a busy deployment's mix. */
export function benchUsageEvent(i: number, base: number): UsageEvent {
  return {
    user_id: `user-${i % 50}`,
    user_name: `User ${i % 50}`,
    source: i % 10 === 0 ? 'web' : 'apikey',
    api_key_id: i % 10 === 0 ? null : `key-${i % 100}`,
    api_key_name: i % 10 === 0 ? '' : `key ${i % 100}`,
    model: `model-${i % 20}`,
    endpoint: '/v1/chat/completions',
    prompt_tokens: 100 + (i % 50),
    completion_tokens: 20 + (i % 30),
    total_tokens: 120 + (i % 50) + (i % 30),
    duration_ms: 50,
    created_at: base + i,
    usage_origin: 'provider',
    aborted: 0,
    stream: i % 2,
    upstream: 'default',
    // As the gateway records them: most rows priced, some without a known price.
    cost_nanos: i % 5 === 0 ? null : 27_000 + (i % 7),
    price_source: i % 5 === 0 ? 'none' : 'catalog',
  };
}

export async function measureRecorder(
  dialect: 'sqlite' | 'postgres',
  rows: number,
): Promise<RecorderMeasurement> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-bench-recorder-'));
  const postgres = dialect === 'postgres' ? await freshPostgres() : undefined;
  const databaseUrl = postgres?.url ?? path.join(dataDir, 'keytally.db');
  const db = await openDatabase(databaseUrl);
  await migrateToLatest(db);
  // A long flush interval: the batches are cut by size (1000 rows) and committed as they fill.
  const recorder = await createUsageRecorder({
    db,
    logger: createLogger('warn'),
    flushMs: 60_000,
    dataDir,
    sqliteWorker: true,
  });
  const base = Date.now() - 3_600_000;
  const event = (i: number) => benchUsageEvent(i, base);
  // Warm-up (not timed): the writer thread is started and the code paths are compiled; "sustains"
  // is about the steady state, not the first second after start-up.
  await Promise.all(
    Array.from({ length: 2000 }, (_, i) => recorder.record({ ...event(i), created_at: base - 1 })),
  );
  await recorder.flushNow();
  const started = performance.now();
  // Rows arrive as they do from concurrent requests: 64 recorded in the same turn of the event loop
  // (they share one journal write), the next 64 once those are journaled.
  for (let i = 0; i < rows; i += RECORD_WAVE) {
    const wave: Promise<void>[] = [];
    for (let j = i; j < Math.min(rows, i + RECORD_WAVE); j += 1) wave.push(recorder.record(event(j)));
    await Promise.all(wave);
  }
  const appended = performance.now();
  await recorder.flushNow();
  const finished = performance.now();
  await recorder.close();
  const committed = (await countRows(databaseUrl)) - 2000;
  await db.close();
  await postgres?.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    dialect,
    rows,
    rowsPerSecond: Math.round(rows / ((finished - started) / 1000)),
    appendRowsPerSecond: Math.round(rows / ((appended - started) / 1000)),
    committed,
  };
}
