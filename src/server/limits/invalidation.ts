import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Db } from '../db/connection.ts';
import { createNotifier, listenForNotifications, parseJsonPayload } from '../db/notifications.ts';

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

const CHANNEL_PREFIX = 'keytally_limits';

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
  // This instance applied its own changes already; its own notifications are skipped.
  const self = randomUUID();
  const notify = createNotifier(pool, CHANNEL_PREFIX);
  const listener = await listenForNotifications({
    databaseUrl: options.databaseUrl,
    prefix: CHANNEL_PREFIX,
    logger,
    name: 'limits listener',
    onPayload: (payload) => {
      const parsed = LimitChangeMessage.safeParse(parseJsonPayload(payload));
      if (parsed.success && parsed.data.from !== self) void applySafely(parsed.data);
    },
    // A change announced while this instance was not listening is unknown: reload everything.
    onListening: (reconnected) => {
      if (reconnected) void applySafely({ kind: 'all' });
    },
  });

  return {
    async publish(change) {
      // Announced first: other instances start reloading while this one does.
      const announce = notify(JSON.stringify({ ...change, from: self })).catch((error: unknown) =>
        logger.warn({ err: error }, 'could not announce a limits change to other instances'),
      );
      await Promise.all([announce, applySafely(change)]);
    },
    close: () => listener.close(),
  };
}
