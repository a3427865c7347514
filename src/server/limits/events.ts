import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';

/**
 * Limit events: a soft threshold or a hard limit crossed (once per window and limit), and every
 * rejection. Each is counted in keytally_limit_events_total{kind,limit}; crossings are also logged
 * and, with KEYTALLY_WEBHOOK_URL, posted to the webhook.
 */
export type LimitEventKind = 'soft_threshold' | 'hard_limit' | 'rejected';

export interface LimitEvent {
  kind: LimitEventKind;
  limit: string;
  used: number;
  max: number;
  window: string;
  user_id: string;
  api_key_id: string | null;
  quota_id: string | null;
  at: string;
}

export interface LimitEventSink {
  emit(event: LimitEvent): void;
  close(): Promise<void>;
}

export interface WebhookOptions {
  url: string;
  secret: string;
  /** Delays between attempts; the default retries 5 times over ~15 s. */
  backoffMs?: readonly number[];
  fetch?: typeof fetch;
}

// A receiver that is down must not grow memory without bound: past this many waiting events the
// oldest are dropped (and logged).
const WEBHOOK_QUEUE_MAX = 1000;
const DEFAULT_BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const WEBHOOK_TIMEOUT_MS = 5000;

/** `sha256=<hex>` of `<timestamp>.<body>`: the timestamp is signed too, so a replay can be spotted. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function createLimitEventSink(options: {
  registry: Registry;
  logger: Logger;
  webhook?: WebhookOptions;
}): LimitEventSink {
  const counter = new Counter({
    name: 'keytally_limit_events_total',
    help: 'Limit events: soft thresholds and hard limits crossed, and requests rejected (429)',
    labelNames: ['kind', 'limit'] as const,
    registers: [options.registry],
  });
  const webhook = options.webhook ? createWebhook(options.webhook, options.logger) : null;
  return {
    emit(event) {
      counter.inc({ kind: event.kind, limit: event.limit });
      if (event.kind === 'rejected') return;
      options.logger.warn(
        {
          limit: event.limit,
          used: event.used,
          max: event.max,
          window: event.window,
          apiKeyId: event.api_key_id,
          userId: event.user_id,
        },
        event.kind === 'soft_threshold' ? 'a limit crossed its soft threshold' : 'a limit is reached',
      );
      webhook?.send(event);
    },
    async close() {
      await webhook?.close();
    },
  };
}

/** Posts events one at a time, in order, off the request path; each is retried with backoff. */
function createWebhook(options: WebhookOptions, logger: Logger) {
  const queue: LimitEvent[] = [];
  const backoff = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const doFetch = options.fetch ?? fetch;
  let running: Promise<void> | null = null;
  let closed = false;
  let wake: (() => void) | null = null;

  const deliver = async (event: LimitEvent): Promise<void> => {
    const body = JSON.stringify({ type: `limit.${event.kind}`, ...event });
    for (let attempt = 0; attempt <= backoff.length; attempt++) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      try {
        const response = await doFetch(options.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-keytally-timestamp': timestamp,
            'x-keytally-signature': signWebhook(options.secret, timestamp, body),
          },
          body,
          signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
        });
        await response.body?.cancel().catch(() => {});
        if (response.ok) return;
        if (response.status < 500 && response.status !== 429) {
          logger.warn({ status: response.status }, 'the limits webhook refused an event; not retried');
          return;
        }
      } catch {
        // retried below
      }
      const delay = backoff[attempt];
      if (delay === undefined || closed) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        timer.unref();
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
    logger.warn({ kind: event.kind, limit: event.limit }, 'could not deliver a limit event to the webhook');
  };

  const run = async () => {
    for (let event = queue.shift(); event; event = queue.shift()) await deliver(event);
    running = null;
  };

  return {
    send(event: LimitEvent) {
      if (closed) return;
      if (queue.length >= WEBHOOK_QUEUE_MAX) {
        queue.shift();
        logger.warn('the limits webhook queue is full; the oldest event was dropped');
      }
      queue.push(event);
      running ??= run();
    },
    async close() {
      closed = true;
      wake?.();
      // One last attempt for what is queued, without waiting out the backoff.
      await running;
    },
  };
}
