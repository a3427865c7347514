import type pg from 'pg';
import type { Logger } from 'pino';

/**
 * One LISTEN connection per feature that spreads changes between instances sharing a PostgreSQL
 * database (credentials, prices, limits). The channel carries the schema name, so instances (and
 * parallel test files) on different schemas of one database do not see each other's events. The
 * connection is named after its channel (`application_name`) so operators and tests can find it in
 * pg_stat_activity. After a dropped connection it tries again every 500 ms; a notification missed
 * meanwhile is the caller's to cover in `onListening(true)` (reload everything).
 */
const RECONNECT_DELAY_MS = 500;

/** `<prefix>_<schema>`, reduced to what an unquoted identifier allows and PostgreSQL's 63 bytes. */
export function schemaChannel(prefix: string, schema: string): string {
  return `${prefix}_${schema.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

async function channelOf(client: pg.Pool | pg.Client, prefix: string): Promise<string> {
  const result = await client.query<{ schema: string }>('select current_schema() as schema');
  return schemaChannel(prefix, result.rows[0]?.schema ?? 'public');
}

/** Sends NOTIFY on this schema's channel of `prefix` (the channel name is looked up once). */
export function createNotifier(pool: pg.Pool, prefix: string): (payload: string) => Promise<void> {
  let channel: Promise<string> | undefined;
  return async (payload) => {
    try {
      channel ??= channelOf(pool, prefix);
      await pool.query('select pg_notify($1, $2)', [await channel, payload]);
    } catch (error) {
      channel = undefined;
      throw error;
    }
  };
}

export interface NotificationListener {
  close(): Promise<void>;
}

export async function listenForNotifications(options: {
  databaseUrl: string;
  prefix: string;
  logger: Logger;
  /** Names the listener in its log lines, e.g. 'auth invalidation listener'. */
  name: string;
  onPayload: (payload: string | undefined) => void;
  /** Called each time LISTEN is in place: `reconnected` is false only when the first attempt worked. */
  onListening: (reconnected: boolean) => void | Promise<void>;
}): Promise<NotificationListener> {
  const { logger, name } = options;
  let client: pg.Client | undefined;
  let closed = false;
  let attempts = 0;
  let timer: NodeJS.Timeout | undefined;

  // Loaded only for PostgreSQL: SQLite never needs the driver.
  const { default: driver } = await import('pg');
  const connect = async (): Promise<void> => {
    attempts += 1;
    const next = new driver.Client({ connectionString: options.databaseUrl });
    next.on('error', (error) => logger.warn({ err: error }, `${name} lost its connection; reconnecting`));
    next.on('end', () => {
      if (client === next) client = undefined;
      if (!closed) schedule();
    });
    next.on('notification', (message) => options.onPayload(message.payload));
    try {
      await next.connect();
      const channel = await channelOf(next, options.prefix);
      await next.query(`SET application_name = '${channel}'`);
      await next.query(`LISTEN "${channel}"`);
      if (closed) {
        await next.end();
        return;
      }
      client = next;
      await options.onListening(attempts > 1);
    } catch (error) {
      logger.warn({ err: error }, `${name} could not connect; retrying`);
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
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => {});
    },
  };
}

/** A notification's JSON payload, or undefined when it is not JSON (validated by the caller). */
export function parseJsonPayload(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? '');
  } catch {
    return undefined;
  }
}
