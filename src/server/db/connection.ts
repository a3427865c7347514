import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type pg from 'pg';
import { isPostgresUrl } from '../config.ts';
import { createPrivateFile, makePrivateDir } from '../data-dir.ts';
import { CurrentSchemaPostgresDialect } from './current-schema-dialect.ts';
import type { DialectName } from './dialect.ts';
import type { Database } from './schema.ts';
import { applySqlitePragmas } from './sqlite-pragmas.ts';

export interface Db {
  kysely: Kysely<Database>;
  dialect: DialectName;
  /** The PostgreSQL pool, for LISTEN/NOTIFY; undefined on SQLite. */
  pool?: pg.Pool;
  /** The better-sqlite3 handle, for prepared-statement bulk writes (usage ingest); undefined on PostgreSQL. */
  sqlite?: SqliteDatabase.Database;
  /** A redacted description for logs (never contains a password). */
  describe: string;
  close(): Promise<void>;
}

export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

const PG_INT8 = 20;
const PG_NUMERIC = 1700;

/**
 * Timestamps are epoch-ms BIGINTs and token sums are NUMERIC on PostgreSQL, which pg returns as
 * strings. Both stay far below 2^53, so this pool (only this pool; nothing global is patched)
 * parses them as numbers, matching what SQLite returns.
 */
function pgTypesOf(driver: typeof pg) {
  return {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (oid === PG_INT8 || oid === PG_NUMERIC) return (value: string) => Number(value);
      return driver.types.getTypeParser(oid, format);
    },
  };
}

export function redactUrl(url: string): string {
  if (!isPostgresUrl(url)) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

export interface OpenDatabaseOptions {
  /** PostgreSQL pool size; default 10. */
  poolSize?: number;
  /** PostgreSQL: how long a connection above WARM_CONNECTIONS may sit idle before it is closed; default 30 s. */
  idleTimeoutMs?: number;
}

/**
 * PostgreSQL connections kept open however long the pool sits idle: the recorder's two commit lanes.
 * Without them, the first commits after 30 s without traffic opened new backends, whose first
 * statements (catalogs, plans, the trigger functions) competed with the requests for the cores:
 * p99 59-132 ms in the bench's rounds that followed an idle spell, 13-23 ms in the others; with
 * two kept, 15-21 ms in every round (bench/README.md, session 7).
 */
const WARM_CONNECTIONS = 2;

/** Opens SQLite (WAL, busy timeout, foreign keys) or PostgreSQL (pooled) and checks that it answers. */
export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<Db> {
  if (isPostgresUrl(url)) return openPostgres(url, options);
  return openSqlite(url);
}

function openSqlite(file: string): Db {
  let database: SqliteDatabase.Database;
  try {
    // Inside the try: a data dir that cannot be created (a path through a file, no permission) is
    // one line naming the file, not a stack trace.
    if (file !== ':memory:') {
      makePrivateDir(path.dirname(path.resolve(file)));
      createPrivateFile(file);
    }
    database = new SqliteDatabase(file);
    applySqlitePragmas(database);
  } catch (error) {
    throw new DatabaseUnavailableError(`cannot open SQLite database ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return {
    kysely,
    dialect: 'sqlite',
    sqlite: database,
    describe: `sqlite:${file}`,
    close: () => kysely.destroy(),
  };
}

async function openPostgres(url: string, options: OpenDatabaseOptions): Promise<Db> {
  // Loaded only for PostgreSQL: on SQLite the driver would be ~3 MB of heap for nothing.
  const { default: driver } = await import('pg');
  const pool = new driver.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    min: WARM_CONNECTIONS,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    types: pgTypesOf(driver),
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  // pg-pool removes its error listener while a client is checked out; a connection dropped then
  // (PostgreSQL restarting, a network cut mid-transaction) would be an uncaught 'error' event and kill
  // the process. The failure still reaches the pending query, which is what the caller handles.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => {});
    throw new DatabaseUnavailableError(
      `cannot connect to PostgreSQL at ${redactUrl(url)}: ${(error as Error).message || String(error)}`,
      { cause: error },
    );
  }
  const kysely = new Kysely<Database>({ dialect: new CurrentSchemaPostgresDialect({ pool }) });
  return {
    kysely,
    dialect: 'postgres',
    pool,
    describe: redactUrl(url),
    close: () => kysely.destroy(),
  };
}
