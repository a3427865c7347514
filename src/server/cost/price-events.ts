import type pg from 'pg';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';

/**
 * Spreads admin price changes to every instance sharing the PostgreSQL database within a second,
 * like auth/invalidation.ts does for credentials: the instance that made the change reloads at
 * once and announces it with NOTIFY on a per-schema channel; every instance LISTENs and reloads.
 * A reload after reconnecting covers notifications missed meanwhile. SQLite is single-instance.
 */
export interface PriceEvents {
  /** Announces a change already committed (failures are logged: others catch up on reconnect). */
  publish(): Promise<void>;
  close(): Promise<void>;
}

const RECONNECT_DELAY_MS = 500;

export function priceChannelForSchema(schema: string): string {
  return `keytally_prices_${schema.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export async function createPriceEvents(options: {
  db: Db;
  databaseUrl: string;
  logger: Logger;
  /** Reloads the prices from the database. */
  reload: () => Promise<void>;
}): Promise<PriceEvents> {
  const { db, logger, reload } = options;
  const pool = db.pool;
  if (!pool) return { publish: async () => {}, close: async () => {} };
  let channel: string | undefined;
  let client: pg.Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const reloadLogged = () =>
    reload().catch((error: unknown) => logger.warn({ err: error }, 'could not reload prices'));

  const { default: driver } = await import('pg');
  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, RECONNECT_DELAY_MS);
    timer.unref();
  };
  const connect = async (): Promise<void> => {
    const next = new driver.Client({ connectionString: options.databaseUrl });
    next.on('error', (error) =>
      logger.warn({ err: error }, 'price listener lost its connection; reconnecting'),
    );
    next.on('end', () => {
      if (client === next) client = undefined;
      if (!closed) schedule();
    });
    next.on('notification', () => void reloadLogged());
    try {
      await next.connect();
      const schema = await next.query<{ schema: string }>('select current_schema() as schema');
      channel = priceChannelForSchema(schema.rows[0]?.schema ?? 'public');
      await next.query(`SET application_name = '${channel}'`);
      await next.query(`LISTEN "${channel}"`);
      if (closed) {
        await next.end();
        return;
      }
      client = next;
      await reloadLogged();
    } catch (error) {
      logger.warn({ err: error }, 'price listener could not connect; retrying');
      next.removeAllListeners('end');
      await next.end().catch(() => {});
      if (!closed) schedule();
    }
  };
  await connect();
  return {
    async publish() {
      try {
        if (!channel) {
          const result = await pool.query<{ schema: string }>('select current_schema() as schema');
          channel = priceChannelForSchema(result.rows[0]?.schema ?? 'public');
        }
        await pool.query('select pg_notify($1, $2)', [channel, 'prices']);
      } catch (error) {
        logger.warn({ err: error }, 'could not announce a price change to other instances');
      }
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
