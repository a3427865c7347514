import { type RawBuilder, sql } from 'kysely';

/** The few SQL fragments that differ between SQLite and PostgreSQL. Everything else is written once. */

export type DialectName = 'sqlite' | 'postgres';
export type BucketUnit = 'hour' | 'day' | 'month';

export const BUCKET_UNITS: readonly BucketUnit[] = ['hour', 'day', 'month'];

/**
 * UTC bucket label of an epoch-ms column, as in reference section 8.1:
 * hour `YYYY-MM-DD HH:00`, day `YYYY-MM-DD`, month `YYYY-MM`. Labels sort lexicographically.
 * `column` must be a trusted identifier (never user input); it is passed through sql.ref.
 */
export function bucketLabel(dialect: DialectName, column: string, unit: BucketUnit): RawBuilder<string> {
  const ref = sql.ref(column);
  switch (dialect) {
    case 'sqlite': {
      const format = { hour: '%Y-%m-%d %H:00', day: '%Y-%m-%d', month: '%Y-%m' }[unit];
      return sql<string>`strftime(${sql.lit(format)}, ${ref} / 1000, 'unixepoch')`;
    }
    case 'postgres': {
      const format = { hour: 'YYYY-MM-DD HH24:00', day: 'YYYY-MM-DD', month: 'YYYY-MM' }[unit];
      return sql<string>`to_char(to_timestamp(${ref} / 1000.0) at time zone 'UTC', ${sql.lit(format)})`;
    }
    default:
      return assertNever(dialect);
  }
}

/** The same labels computed in JavaScript, for brute-force checks and for the client side. */
export function bucketLabelOf(epochMs: number, unit: BucketUnit): string {
  const iso = new Date(epochMs).toISOString();
  switch (unit) {
    case 'hour':
      return `${iso.slice(0, 10)} ${iso.slice(11, 13)}:00`;
    case 'day':
      return iso.slice(0, 10);
    case 'month':
      return iso.slice(0, 7);
    default:
      return assertNever(unit);
  }
}

export { hourStart } from './hours.ts';

export function assertNever(value: never): never {
  throw new Error(`unexpected value ${String(value)}`);
}

/** The larger of two expressions: SQLite's two-argument max(), PostgreSQL's greatest(). */
export function greatest(
  dialect: DialectName,
  a: RawBuilder<number>,
  b: RawBuilder<number>,
): RawBuilder<number> {
  switch (dialect) {
    case 'sqlite':
      return sql<number>`max(${a}, ${b})`;
    case 'postgres':
      return sql<number>`greatest(${a}, ${b})`;
    default:
      return assertNever(dialect);
  }
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // PostgreSQL: the server is shutting down or restarting, or out of connection slots.
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);
// What pg and pg-pool say when a connection drops or cannot be had within connectionTimeoutMillis.
const UNREACHABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|connection error and is not queryable|Connection ended/i;

/**
 * True when a database error means "cannot answer right now" rather than "this query is wrong":
 * PostgreSQL unreachable, restarting or full (SQLSTATE class 08, 57P0x, 53300), SQLite locked by
 * another writer past its busy timeout or unable to read/write its file. Callers answer 503 with
 * Retry-After instead of 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const seen = new Set<unknown>();
  for (let current = error; current && typeof current === 'object' && !seen.has(current); ) {
    seen.add(current);
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string') {
      if (UNREACHABLE_CODES.has(code) || code.startsWith('08')) return true;
      if (/^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY)/.test(code)) return true;
    }
    if (typeof message === 'string' && UNREACHABLE_MESSAGE.test(message)) return true;
    current = cause;
  }
  return false;
}

/**
 * True for a value the database refuses to store (PostgreSQL SQLSTATE class 22, data exception: a NUL
 * in text, a number out of a column's range, invalid text encoding). Input guards stop the known
 * cases with a message naming the field; this is the net under them: a 400, never a 500.
 */
export function isInvalidValue(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code);
}
