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
