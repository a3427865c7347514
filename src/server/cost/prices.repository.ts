import type { Db } from '../db/connection.ts';
import type { PriceRow } from '../db/schema.ts';

/** SQL of admin prices (one row per version; a version is never updated). */

const toPrice = (row: PriceRow): PriceRow => ({
  ...row,
  input_micros: Number(row.input_micros),
  output_micros: Number(row.output_micros),
  cached_input_micros: row.cached_input_micros === null ? null : Number(row.cached_input_micros),
  cache_write_micros: row.cache_write_micros === null ? null : Number(row.cache_write_micros),
  effective_from: Number(row.effective_from),
  created_at: Number(row.created_at),
});

export async function listPriceRows(db: Db): Promise<PriceRow[]> {
  const rows = await db.kysely
    .selectFrom('prices')
    .selectAll()
    .orderBy('model')
    .orderBy('effective_from', 'desc')
    .orderBy('id')
    .execute();
  return rows.map(toPrice);
}

export async function insertPriceRow(db: Db, row: PriceRow): Promise<void> {
  await db.kysely.insertInto('prices').values(row).execute();
}

/** True when a version was deleted. */
export async function deletePriceRow(db: Db, id: string): Promise<boolean> {
  const result = await db.kysely.deleteFrom('prices').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Models with unpriced requests in daily rollups from `since` on. */
export async function findUnpricedModels(db: Db, since: number): Promise<string[]> {
  const rows = await db.kysely
    .selectFrom('usage_rollups_daily_models')
    .select('model')
    .where('day', '>=', since)
    .where('unpriced_count', '>', 0)
    .groupBy('model')
    .orderBy('model')
    .limit(100)
    .execute();
  return rows.map((row) => row.model);
}
