import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';
import { createNotifier, listenForNotifications } from '../db/notifications.ts';

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

const CHANNEL_PREFIX = 'keytally_prices';

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
  const reloadLogged = () =>
    reload().catch((error: unknown) => logger.warn({ err: error }, 'could not reload prices'));
  const notify = createNotifier(pool, CHANNEL_PREFIX);
  const listener = await listenForNotifications({
    databaseUrl: options.databaseUrl,
    prefix: CHANNEL_PREFIX,
    logger,
    name: 'price listener',
    onPayload: () => void reloadLogged(),
    // The first time too (awaited): start-up has the prices before it serves.
    onListening: reloadLogged,
  });
  return {
    async publish() {
      try {
        await notify('prices');
      } catch (error) {
        logger.warn({ err: error }, 'could not announce a price change to other instances');
      }
    },
    close: () => listener.close(),
  };
}
