import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../helpers/db.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { type KeytallyProcess, startKeytally } from '../helpers/process.ts';
import { env, expectRollupsMatchRaw, HEADERS, rowsByModel, waitForRows } from './durability-helpers.ts';
import { runLoad, waitForCompleted } from './load.ts';

describe.each(DIALECTS)('usage survives process death on %s', (dialect) => {
  let upstream: FakeUpstream;
  let database: TestDatabase;
  const procs: KeytallyProcess[] = [];

  beforeAll(async () => {
    upstream = await startFakeUpstream({ slowMs: 400, quiet: true });
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    for (const proc of procs) await proc.stop('SIGKILL');
    await upstream?.close();
    await database?.close();
  });

  it('kill -9 under load: every completed request is recorded exactly once after restart', async () => {
    const proc = await startKeytally(env(database, upstream));
    procs.push(proc);
    const stop = new AbortController();
    const load = runLoad({
      baseUrl: proc.baseUrl,
      headers: HEADERS,
      concurrency: 16,
      model: (n) => `kill-${n}`,
      stream: (n) => n % 2 === 0,
      stop: stop.signal,
    });
    await waitForCompleted(load, 200);
    proc.child.kill('SIGKILL');
    expect(await proc.exited).toBe('SIGKILL');
    stop.abort();
    const result = await load;
    expect(result.completed.length).toBeGreaterThanOrEqual(200);

    const restarted = await startKeytally(env(database, upstream));
    procs.push(restarted);
    const rows = await waitForRows(database.db, result.completed);
    for (const model of result.completed) expect(rows.get(model), model).toBe(1);
    for (const [model, n] of rows) {
      expect(n, model).toBe(1);
    }
    expect(await restarted.stop('SIGTERM')).toBe(0);
    await expectRollupsMatchRaw(database.db);
    expect(fs.readdirSync(`${database.dataDir}/usage-journal`)).toEqual([]);
  }, 60_000);

  it('SIGTERM under load: in-flight requests complete, every row is written, exit 0', async () => {
    const proc = await startKeytally(env(database, upstream));
    procs.push(proc);
    const stop = new AbortController();
    const load = runLoad({
      baseUrl: proc.baseUrl,
      headers: HEADERS,
      concurrency: 16,
      // Slow upstream answers (400 ms): plenty are in flight when the signal arrives.
      model: (n) => `fake-slow-term-${n}`,
      stream: (n) => n % 2 === 1,
      stop: stop.signal,
    });
    await waitForCompleted(load, 48);
    const exited = proc.stop('SIGTERM');
    // Requests sent after the signal may be refused; the ones in flight must complete.
    await sleep(100);
    stop.abort();
    expect(await exited).toBe(0);
    const result = await load;
    expect(result.completed.length).toBeGreaterThanOrEqual(48);
    const rows = await rowsByModel(database.db);
    const inFlightAtSignal = result.completed.filter((model) => !rows.has(model));
    expect(inFlightAtSignal).toEqual([]);
    for (const model of result.completed) expect(rows.get(model)).toBe(1);
    await expectRollupsMatchRaw(database.db);
  }, 60_000);
});
