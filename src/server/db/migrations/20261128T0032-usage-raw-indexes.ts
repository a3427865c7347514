import { type Kysely, sql } from 'kysely';

// Frozen once landed: later changes go in a new, later-named migration.
//
// Every usage row updates each index of the raw table, and the recorder's commit rate is bound by
// those updates (bench/proxy, recorder). Two of them paid for nothing:
// - `idx_usage_model`: no query filters raw rows by model (the usage API reads the rollups).
// - `idx_usage_source`: only the backfill (reference section 8.6) looks for rows without a source;
//   a partial index holds just those rows, so a normal insert does not touch it.

/** The raw table's partial index of unsourced rows (exported for the bench, which rebuilds it). */
export const UNSOURCED_INDEX = {
  name: 'idx_usage_unsourced',
  columns: 'id',
  // `source` is NOT NULL with default '': '' is how a row without a source is stored.
  where: "source = ''",
};

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists idx_usage_model`.execute(db);
  await sql`drop index if exists idx_usage_source`.execute(db);
  await sql
    .raw(
      `create index if not exists ${UNSOURCED_INDEX.name} on usage_records (${UNSOURCED_INDEX.columns}) where ${UNSOURCED_INDEX.where}`,
    )
    .execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql.raw(`drop index if exists ${UNSOURCED_INDEX.name}`).execute(db);
  await db.schema
    .createIndex('idx_usage_source')
    .ifNotExists()
    .on('usage_records')
    .column('source')
    .execute();
  await db.schema.createIndex('idx_usage_model').ifNotExists().on('usage_records').column('model').execute();
}
