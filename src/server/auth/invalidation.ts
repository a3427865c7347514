import type { Logger } from 'pino';
import { z } from 'zod';
import type { Db } from '../db/connection.ts';
import {
  createNotifier,
  listenForNotifications,
  parseJsonPayload,
  schemaChannel,
} from '../db/notifications.ts';
import type { CredentialCache, Invalidation } from './credential-cache.ts';

/**
 * Spreads credential changes (revoke, disable, role change, delete, logout) to every instance
 * sharing the PostgreSQL database, within one second (decisions.md section 4): the change is
 * applied to this instance's cache at once, then announced with NOTIFY; every instance LISTENs on
 * a dedicated connection. The channel carries the schema name, so instances (and parallel test
 * files) on different schemas of one database do not see each other's events.
 * SQLite is single-instance: local eviction is all there is.
 */
export interface AuthEvents {
  publish(event: Invalidation): Promise<void>;
  close(): Promise<void>;
}

const InvalidationMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('key'), id: z.string() }),
  z.object({ kind: z.literal('user'), id: z.string() }),
  z.object({ kind: z.literal('session'), id: z.string() }),
  z.object({ kind: z.literal('all') }),
]);

const CHANNEL_PREFIX = 'keytally_auth';

export function channelForSchema(schema: string): string {
  return schemaChannel(CHANNEL_PREFIX, schema);
}

/**
 * Publish-only (CLI commands: a revoke from the CLI reaches the running servers). The change is
 * already committed when this runs, so a failed NOTIFY is logged, not thrown: other instances then
 * catch up when their cache entry expires (10 s).
 */
export function createAuthPublisher(db: Db, cache?: CredentialCache, logger?: Logger): AuthEvents {
  const notify = db.pool ? createNotifier(db.pool, CHANNEL_PREFIX) : undefined;
  return {
    async publish(event) {
      cache?.invalidate(event);
      if (!notify) return;
      try {
        await notify(JSON.stringify(event));
      } catch (error) {
        logger?.warn(
          { err: error, event: event.kind },
          'could not announce a credential change to other instances',
        );
      }
    },
    async close() {},
  };
}

export interface AuthListenerOptions {
  db: Db;
  /** The connection URL the pool uses (the listener opens its own client on it). */
  databaseUrl: string;
  cache: CredentialCache;
  logger: Logger;
}

/** Publisher plus a LISTEN client that evicts what other instances announce; reconnects on loss. */
export async function createAuthEvents(options: AuthListenerOptions): Promise<AuthEvents> {
  const { db, cache, logger } = options;
  const publisher = createAuthPublisher(db, cache, logger);
  if (!db.pool) return publisher;
  const listener = await listenForNotifications({
    databaseUrl: options.databaseUrl,
    prefix: CHANNEL_PREFIX,
    logger,
    name: 'auth invalidation listener',
    onPayload: (payload) => {
      const parsed = InvalidationMessage.safeParse(parseJsonPayload(payload));
      if (parsed.success) cache.invalidate(parsed.data);
    },
    // Anything announced while we were not listening is unknown: start from an empty cache.
    onListening: () => cache.invalidate({ kind: 'all' }),
  });
  return { publish: publisher.publish, close: () => listener.close() };
}
