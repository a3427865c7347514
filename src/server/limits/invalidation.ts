import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Db } from '../db/connection.ts';

/**
 * Spreads limit changes (a key's limits, a user's quota rules) to every instance sharing the
 * PostgreSQL database within one second, as auth/invalidation.ts does for credentials: the change
 * is applied here at once, then announced with NOTIFY on a channel named after the schema. A
 * listener that reconnects reloads everything (a change may have been missed meanwhile).
 */
export type LimitChange = { kind: 'key'; id: string } | { kind: 'user'; id: string } | { kind: 'all' };

const LimitChangeMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('key'), id: z.string(), from: z.string() }),
  z.object({ kind: z.literal('user'), id: z.string(), from: z.string() }),
  z.object({ kind: z.literal('all'), from: z.string() }),
]);

const RECONNECT_DELAY_MS = 500;

function channelFor(schema: string): string {
  return `keytally_limits_${schema.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export interface LimitChanges {
  publish(change: LimitChange): Promise<void>;
  close(): Promise<void>;
}

export async function createLimitChanges(options: {
  db: Db;
  databaseUrl: string;
  logger: Logger;
  apply: (change: LimitChange) => Promise<void>;
}): Promise<LimitChanges> {
  const { db, logger, apply } = options;
  const applySafely = (change: LimitChange) =>
    apply(change).catch((error: unknown) => logger.warn({ err: error }, 'could not reload changed limits'));
  const pool = db.pool;
  if (!pool) {
    return { publish: async (change) => applySafely(change), close: async () => {} };
  }
  let channel: string | undefined;
  // This instance applied its own changes already; its own notifications are skipped.
  const self = randomUUID();
  let client: pg.Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const { default: driver } = await import('pg');

  const connect = async (): Promise<void> => {
    const next = new driver.Client({ connectionString: options.databaseUrl });
    next.on('error', (error) =>
      logger.warn({ err: error }, 'limits listener lost its connection; reconnecting'),
    );
    next.on('end', () => {
      if (client === next) client = undefined;
      if (!closed) schedule();
    });
    next.on('notification', (message) => {
      let payload: unknown;
      try {
        payload = JSON.parse(message.payload ?? '');
      } catch {
        return;
      }
      const parsed = LimitChangeMessage.safeParse(payload);
      if (parsed.success && parsed.data.from !== self) void applySafely(parsed.data);
    });
    try {
      await next.connect();
      const schema = await next.query<{ schema: string }>('select current_schema() as schema');
      channel = channelFor(schema.rows[0]?.schema ?? 'public');
      await next.query(`LISTEN "${channel}"`);
      if (closed) {
        await next.end();
        return;
      }
      const reconnected = client === undefined && timer !== undefined;
      client = next;
      if (reconnected) void applySafely({ kind: 'all' });
    } catch (error) {
      logger.warn({ err: error }, 'limits listener could not connect; retrying');
      next.removeAllListeners('end');
      await next.end().catch(() => {});
      if (!closed) schedule();
    }
  };
  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      void connect().finally(() => {
        timer = undefined;
      });
    }, RECONNECT_DELAY_MS);
    timer.unref();
  };
  await connect();

  return {
    async publish(change) {
      // Announced first: other instances start reloading while this one does.
      const announce = (async () => {
        try {
          if (!channel) {
            const result = await pool.query<{ schema: string }>('select current_schema() as schema');
            channel = channelFor(result.rows[0]?.schema ?? 'public');
          }
          await pool.query('select pg_notify($1, $2)', [channel, JSON.stringify({ ...change, from: self })]);
        } catch (error) {
          logger.warn({ err: error }, 'could not announce a limits change to other instances');
        }
      })();
      await Promise.all([announce, applySafely(change)]);
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => {});
    },
  };
}
