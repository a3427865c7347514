import fs from 'node:fs';
import { Pool } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/db.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { startKeytally } from '../helpers/process.ts';

const CLIENTS = 32;
const LEGACY_KEY = 'legacy-key-for-graceful-shutdown';

interface Outcome {
  client: number;
  /** ms relative to the SIGTERM (negative: sent before it). */
  sentAt: number;
  endedAt: number;
  status?: number;
  connection?: string;
  error?: string;
}

/**
 * SIGTERM under load, on a real process (issue: 20-24 of 32 keep-alive clients got socket errors).
 * Requests sent before the signal complete; later ones on an open connection are served with
 * `connection: close`; new connections are refused (ECONNREFUSED), never reset.
 */
describe('graceful shutdown', () => {
  let upstream: FakeUpstream;
  const dirs: string[] = [];
  afterAll(async () => {
    await upstream?.close();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`SIGTERM with ${CLIENTS} concurrent keep-alive clients: no socket error for any accepted request`, async () => {
    upstream = await startFakeUpstream({ slowMs: 150, quiet: true });
    const dataDir = makeTempDir();
    dirs.push(dataDir);
    const proc = await startKeytally({
      KEYTALLY_DATA_DIR: dataDir,
      KEYTALLY_UPSTREAM_URL: upstream.baseUrl,
      KEYTALLY_API_KEYS: LEGACY_KEY,
      KEYTALLY_LOG_LEVEL: 'warn',
    });

    let sigtermAt = Number.POSITIVE_INFINITY;
    const outcomes: Outcome[] = [];
    const answered = new Array<number>(CLIENTS).fill(0);
    const clients = Array.from({ length: CLIENTS }, (_, client) => {
      // One keep-alive connection per client, as a load balancer or an SDK holds them.
      const pool = new Pool(proc.baseUrl, { connections: 1, pipelining: 1, keepAliveTimeout: 30_000 });
      const run = async () => {
        for (let i = 0; i < 500; i += 1) {
          const sentAt = performance.now();
          // Half slow (in flight when the signal comes), half immediate (idle sockets in between).
          const model = (client + i) % 2 === 0 ? 'fake-slow' : 'fake-model';
          const outcome: Outcome = { client, sentAt: 0, endedAt: 0 };
          try {
            const response = await pool.request({
              method: 'POST',
              path: '/v1/chat/completions',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${LEGACY_KEY}` },
              body: JSON.stringify({
                model,
                messages: [{ role: 'user', content: `client ${client} #${i}` }],
              }),
            });
            await response.body.text();
            outcome.status = response.statusCode;
            outcome.connection = String(response.headers.connection ?? '');
            answered[client] = (answered[client] ?? 0) + 1;
          } catch (error) {
            const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
            outcome.error = err.code ?? err.cause?.code ?? err.message;
          }
          outcome.sentAt = sentAt - sigtermAt;
          outcome.endedAt = performance.now() - sigtermAt;
          outcomes.push(outcome);
          if (outcome.error) break;
        }
        await pool.destroy();
      };
      return run();
    });

    // Every client has its connection and a few answers; then signal while requests are in flight.
    const deadline = Date.now() + 20_000;
    while (answered.some((count) => count < 3)) {
      if (Date.now() > deadline) throw new Error(`clients did not get going: ${answered.join(',')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    sigtermAt = performance.now();
    proc.child.kill('SIGTERM');
    const exitCode = await proc.exited;
    await Promise.all(clients);

    expect(exitCode).toBe(0);
    // Answers that came before the signal have sentAt -Infinity (sigtermAt was not set yet).
    const before = outcomes.filter((o) => o.sentAt < 0);
    const after = outcomes.filter((o) => o.sentAt >= 0);
    const summary = JSON.stringify(outcomes.filter((o) => o.error || o.status !== 200).slice(0, 10), null, 1);
    // Every request sent before the signal was answered 200: none reset, none refused, no 503.
    expect(
      before.filter((o) => o.status !== 200),
      summary,
    ).toEqual([]);
    // Some were in flight when the signal came, and completed.
    expect(before.filter((o) => o.endedAt > 0).length).toBeGreaterThan(0);
    // Afterwards: served on an open connection, or refused cleanly; never reset.
    for (const o of after) {
      if (o.error) expect(o.error, summary).toBe('ECONNREFUSED');
      else expect(o.status, summary).toBe(200);
    }
    // Answers given after the signal tell the client to close the connection (rather than cutting it).
    const answeredAfter = outcomes.filter((o) => o.status === 200 && o.endedAt > 0);
    expect(answeredAfter.filter((o) => o.connection === 'close').length).toBeGreaterThan(0);
    // Each client ends with a refused connection: the listener is gone.
    expect(after.filter((o) => o.error === 'ECONNREFUSED').length).toBe(CLIENTS);
  }, 60_000);
});
