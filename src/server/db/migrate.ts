import { type Migration, type MigrationProvider, type MigrationResultSet, Migrator, sql } from 'kysely';
import type { Db } from './connection.ts';
import * as initial from './migrations/20261128T0001-initial.ts';
import * as usageDailyRollups from './migrations/20261128T0030-usage-daily-rollups.ts';
import * as usageDayVersions from './migrations/20261128T0031-usage-day-versions.ts';
import * as usageRawIndexes from './migrations/20261128T0032-usage-raw-indexes.ts';
import * as usageCost from './migrations/20261201T0300-usage-cost.ts';
import * as limits from './migrations/20261201T0400-limits.ts';
import * as access from './migrations/20261201T0500-access.ts';
import * as userIdentities from './migrations/20261201T0600-user-identities.ts';
import * as pgStatementRollupTriggers from './migrations/20261201T0700-pg-statement-rollup-triggers.ts';

/** Migrations are listed here, in order; names are timestamps so they sort as they were written. */
const MIGRATIONS: Record<string, Migration> = {
  '20261128T0001-initial': initial,
  '20261128T0030-usage-daily-rollups': usageDailyRollups,
  '20261128T0031-usage-day-versions': usageDayVersions,
  '20261128T0032-usage-raw-indexes': usageRawIndexes,
  '20261201T0300-usage-cost': usageCost,
  '20261201T0400-limits': limits,
  '20261201T0500-access': access,
  '20261201T0600-user-identities': userIdentities,
  '20261201T0700-pg-statement-rollup-triggers': pgStatementRollupTriggers,
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

export interface MigrationOutcome {
  applied: string[];
}

export class MigrationError extends Error {}

/** Applies pending migrations; idempotent (a second run applies nothing). */
export async function migrateToLatest(db: Db): Promise<MigrationOutcome> {
  // Kysely looks for its migration tables in every schema unless told which one: on a PostgreSQL
  // database where another schema already holds keytally (tests, several installs), it would skip
  // creating them in ours and fail. Pin them to the connection's current schema.
  const migrationTableSchema =
    db.dialect === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db.kysely)).rows[0]?.schema
      : undefined;
  const migrator = new Migrator({ db: db.kysely, provider, migrationTableSchema });
  const result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(
      `migration ${failed} failed: ${(result.error as Error).message ?? result.error}`,
      {
        cause: result.error,
      },
    );
  }
  return {
    applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
  };
}
