import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../../src/server/limits/events.ts';
import { DIALECTS } from '../helpers/db.ts';
import { ask, type LimitsFixture, outcome, REQUEST_TOKENS, startLimitsFixture } from './support.ts';

const SECRET = 'webhook-secret-for-tests-0123';

interface Received {
  body: string;
  signature: string;
  timestamp: string;
}

/** A local receiver that refuses the first `failFirst` deliveries with a 503. */
async function startReceiver(failFirst: number) {
  const received: Received[] = [];
  let attempts = 0;
  const waiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      attempts += 1;
      if (attempts <= failFirst) {
        res.writeHead(503).end();
        return;
      }
      received.push({
        body: Buffer.concat(chunks).toString('utf8'),
        signature: String(req.headers['x-keytally-signature']),
        timestamp: String(req.headers['x-keytally-timestamp']),
      });
      res.writeHead(204).end();
      for (const wake of waiters.splice(0)) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    attempts: () => attempts,
    async waitFor(count: number) {
      while (received.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(DIALECTS)('the limits webhook on %s', (dialect) => {
  let f: LimitsFixture;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver(1);
    f = await startLimitsFixture(dialect, { settings: { webhookUrl: receiver.url, webhookSecret: SECRET } });
  });
  afterAll(async () => {
    await f?.close();
    await receiver?.close();
  });

  it('posts signed soft-threshold and hard-limit events, retried after a failure, without delaying requests', async () => {
    // 3 requests of 19 tokens fit in 60; the 2nd crosses 50% (38 ≥ 30), the 3rd spends 57 of 60.
    const { id, client } = await f.createKey({ token_budget: 60, soft_threshold: 50, budget_window: '1d' });
    for (let i = 0; i < 3; i++) expect((await outcome(ask(client))).ok).toBe(true);
    const refused = await outcome(ask(client));
    expect(refused.ok).toBe(false);
    await receiver.waitFor(2);
    // The first delivery was refused with a 503 and retried.
    expect(receiver.attempts()).toBeGreaterThanOrEqual(3);
    const events = receiver.received.map((r) => JSON.parse(r.body));
    expect(events[0]).toMatchObject({
      type: 'limit.soft_threshold',
      limit: 'token_budget',
      api_key_id: id,
      used: 2 * REQUEST_TOKENS,
      max: 60,
    });
    expect(events[1]).toMatchObject({
      type: 'limit.hard_limit',
      limit: 'token_budget',
      api_key_id: id,
      max: 60,
    });
    for (const delivery of receiver.received) {
      expect(delivery.signature).toBe(signWebhook(SECRET, delivery.timestamp, delivery.body));
    }
    // Each crossing is reported once per window.
    await outcome(ask(client));
    const listed = await f.t.app.inject({
      method: 'GET',
      url: '/api/auth/api-keys/limits',
      cookies: { session: f.admin.session },
    });
    const status = listed.json().keys.find((k: { id: string }) => k.id === id);
    expect(status).toMatchObject({ soft_exceeded: true, exhausted: false, rejected: 2 });
    expect(receiver.received).toHaveLength(2);
  });
});
