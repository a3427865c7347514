import type pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Db } from '../db/connection.ts';
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

// After a dropped connection, try again every 500 ms: a notification missed meanwhile is covered
// by clearing the whole cache on reconnect.
const RECONNECT_DELAY_MS = 500;

export function channelForSchema(schema: string): string {
  return `keytally_auth_${schema.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

async function currentChannel(db: Db): Promise<string> {
  const pool = db.pool;
  if (!pool) throw new Error('not a PostgreSQL database');
  const result = await pool.query<{ schema: string }>('select current_schema() as schema');
  return channelForSchema(result.rows[0]?.schema ?? 'public');
}

/**
 * Publish-only (CLI commands: a revoke from the CLI reaches the running servers). The change is
 * already committed when this runs, so a failed NOTIFY is logged, not thrown: other instances then
 * catch up when their cache entry expires (10 s).
 */
export function createAuthPublisher(db: Db, cache?: CredentialCache, logger?: Logger): AuthEvents {
  let channel: Promise<string> | undefined;
  return {
    async publish(event) {
      cache?.invalidate(event);
      if (!db.pool) return;
      try {
        channel ??= currentChannel(db);
        await db.pool.query('select pg_notify($1, $2)', [await channel, JSON.stringify(event)]);
      } catch (error) {
        channel = undefined;
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

  let client: pg.Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  // Loaded only for PostgreSQL (db.pool is set): SQLite never needs the driver.
  const { default: driver } = await import('pg');
  const connect = async (): Promise<void> => {
    const next = new driver.Client({ connectionString: options.databaseUrl });
    next.on('error', (error) => {
      logger.warn({ err: error }, 'auth invalidation listener lost its connection; reconnecting');
    });
    next.on('end', () => {
      if (client === next) client = undefined;
      if (!closed) schedule();
    });
    next.on('notification', (message) => {
      const parsed = InvalidationMessage.safeParse(safeJson(message.payload));
      if (parsed.success) cache.invalidate(parsed.data);
    });
    try {
      await next.connect();
      const schema = await next.query<{ schema: string }>('select current_schema() as schema');
      const channel = channelForSchema(schema.rows[0]?.schema ?? 'public');
      // Named after the channel so operators (and tests) can find this connection in pg_stat_activity.
      await next.query(`SET application_name = '${channel}'`);
      await next.query(`LISTEN "${channel}"`);
      if (closed) {
        await next.end();
        return;
      }
      client = next;
      // Anything announced while we were not listening is unknown: start from an empty cache.
      cache.invalidate({ kind: 'all' });
    } catch (error) {
      logger.warn({ err: error }, 'auth invalidation listener could not connect; retrying');
      next.removeAllListeners('end');
      await next.end().catch(() => {});
      if (!closed) schedule();
    }
  };
  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, RECONNECT_DELAY_MS);
    timer.unref();
  };

  await connect();
  return {
    publish: publisher.publish,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => {});
    },
  };
}

function safeJson(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? '');
  } catch {
    return undefined;
  }
}
