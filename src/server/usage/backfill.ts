import { sql } from 'kysely';
import { LEGACY_USER_ID } from '../auth/context.ts';
import type { Db } from '../db/connection.ts';
import { ROLLUP_COLUMNS, SQL_HOUR_OF } from './sqlite-ingest.ts';

/**
 * Reference 8.6: rows that arrive without a source (imports, pre-feature data) become `legacy` when
 * they belong to the synthetic legacy user and `web` otherwise (key traffic cannot be recovered).
 * Run at every start-up; idempotent, because it only touches rows whose source is empty.
 *
 * The endpoints read rollups, which were written with the empty source, so the same transaction
 * rebuilds the hourly rollups of every affected hour from the raw rows and then the daily rollups of
 * every affected day from the hourly ones: afterwards all three agree with the raw rows exactly.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// Hours (or days) per statement: 500 bound values stay far below both databases' limits.
const CHUNK = 500;

export interface BackfillOutcome {
  /** Raw rows given a source. */
  rows: number;
  /** Hours whose rollups were rebuilt. */
  hours: number;
}

// The hour a row's rollup is in, exactly as ingest computes it.
const hourOf = sql<number>`${sql.raw(SQL_HOUR_OF)}`;
const dayOf = sql<number>`hour - (hour % ${sql.lit(DAY_MS)})`;
const COST_SUMS = [
  'cached_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'cost_nanos',
  'unpriced_count',
] as const;

function chunks<T>(values: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += CHUNK) out.push(values.slice(i, i + CHUNK));
  return out;
}

export async function backfillUsageSource(db: Db): Promise<BackfillOutcome> {
  // `source` is NOT NULL (default ''): an import without a source leaves ''. The partial index
  // idx_usage_unsourced holds exactly those rows.
  const missingSource = db.kysely.selectFrom('usage_records').where('source', '=', '');
  // The common case at start-up: one indexed probe and nothing to do.
  const any = await missingSource.select('id').limit(1).executeTakeFirst();
  if (!any) return { rows: 0, hours: 0 };

  return db.kysely.transaction().execute(async (trx) => {
    const hourRows = await trx
      .selectFrom('usage_records')
      .where('source', '=', '')
      .select(hourOf.as('hour'))
      .distinct()
      .execute();
    const hours = hourRows.map((row) => Number(row.hour)).sort((a, b) => a - b);

    const legacy = await trx
      .updateTable('usage_records')
      .set({ source: 'legacy' })
      .where('source', '=', '')
      .where('user_id', '=', LEGACY_USER_ID)
      .executeTakeFirst();
    const web = await trx
      .updateTable('usage_records')
      .set({ source: 'web' })
      .where('source', '=', '')
      .executeTakeFirst();

    for (const chunk of chunks(hours)) {
      const first = chunk[0] ?? 0;
      const last = chunk[chunk.length - 1] ?? 0;
      await trx.deleteFrom('usage_rollups_hourly').where('hour', 'in', chunk).execute();
      await trx
        .insertInto('usage_rollups_hourly')
        .columns([...ROLLUP_COLUMNS])
        .expression(
          trx
            .selectFrom('usage_records')
            .select((eb) => [
              hourOf.as('hour'),
              'user_id',
              'user_name',
              'source',
              eb.fn.coalesce('api_key_id', sql.lit('')).as('api_key_id'),
              'api_key_name',
              'model',
              eb.fn.sum<number>('prompt_tokens').as('prompt_tokens'),
              eb.fn.sum<number>('completion_tokens').as('completion_tokens'),
              eb.fn.sum<number>('total_tokens').as('total_tokens'),
              eb.fn.countAll<number>().as('request_count'),
              eb.fn.max('created_at').as('last_used'),
              sql<number>`coalesce(sum(cached_tokens), 0)`.as('cached_tokens'),
              sql<number>`coalesce(sum(cache_write_tokens), 0)`.as('cache_write_tokens'),
              sql<number>`coalesce(sum(reasoning_tokens), 0)`.as('reasoning_tokens'),
              sql<number>`coalesce(sum(cost_nanos), 0)`.as('cost_nanos'),
              sql<number>`sum(case when price_source = 'none' then 1 else 0 end)`.as('unpriced_count'),
            ])
            .where('created_at', '>=', first)
            .where('created_at', '<', last + HOUR_MS)
            .where(hourOf, 'in', chunk)
            .groupBy([hourOf, 'user_id', 'user_name', 'source', 'api_key_id', 'api_key_name', 'model']),
        )
        .execute();
    }

    const days = [...new Set(hours.map((hour) => hour - (hour % DAY_MS)))];
    for (const chunk of chunks(days)) {
      const first = chunk[0] ?? 0;
      const last = chunk[chunk.length - 1] ?? 0;
      await trx.deleteFrom('usage_rollups_daily_sources').where('day', 'in', chunk).execute();
      await trx.deleteFrom('usage_rollups_daily_models').where('day', 'in', chunk).execute();
      const hourly = trx
        .selectFrom('usage_rollups_hourly')
        .where('hour', '>=', first)
        .where('hour', '<', last + DAY_MS)
        .where(dayOf, 'in', chunk);
      const sums = [
        sql<number>`sum(prompt_tokens)`.as('prompt_tokens'),
        sql<number>`sum(completion_tokens)`.as('completion_tokens'),
        sql<number>`sum(total_tokens)`.as('total_tokens'),
        sql<number>`sum(request_count)`.as('request_count'),
        sql<number>`max(last_used)`.as('last_used'),
        ...COST_SUMS.map((column) => sql<number>`sum(${sql.ref(column)})`.as(column)),
      ];
      await trx
        .insertInto('usage_rollups_daily_sources')
        .columns([
          'day',
          'user_id',
          'user_name',
          'source',
          'api_key_id',
          'api_key_name',
          'prompt_tokens',
          'completion_tokens',
          'total_tokens',
          'request_count',
          'last_used',
          ...COST_SUMS,
        ])
        .expression(
          hourly
            .select([
              dayOf.as('day'),
              'user_id',
              'user_name',
              'source',
              'api_key_id',
              'api_key_name',
              ...sums,
            ])
            .groupBy([dayOf, 'user_id', 'user_name', 'source', 'api_key_id', 'api_key_name']),
        )
        .execute();
      await trx
        .insertInto('usage_rollups_daily_models')
        .columns([
          'day',
          'user_id',
          'user_name',
          'model',
          'prompt_tokens',
          'completion_tokens',
          'total_tokens',
          'request_count',
          'last_used',
          ...COST_SUMS,
        ])
        .expression(
          hourly
            .select([dayOf.as('day'), 'user_id', 'user_name', 'model', ...sums])
            .groupBy([dayOf, 'user_id', 'user_name', 'model']),
        )
        .execute();
    }
    return {
      rows: Number(legacy.numUpdatedRows) + Number(web.numUpdatedRows),
      hours: hours.length,
    };
  });
}
