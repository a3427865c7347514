import type { Db } from '../db/connection.ts';
import { hourStart } from '../db/hours.ts';
import { keysetPages } from '../usage/usage.repository.ts';
import type { CatalogProvider, PriceBook, PriceSource } from './price-book.ts';
import type { CostCounts } from './rates.ts';

/**
 * `keytally usage reprice`: recomputes the cost of the raw rows recorded in [from, to) under the
 * price list as it stands now (each row still gets the version in effect at its own time, so a price
 * added later with an earlier effective time reaches the rows it covers). Rows whose cost or source
 * changes are updated, and their hourly rollups adjusted by the exact difference in the same
 * transaction (the daily rollups follow through their triggers). Running it twice changes nothing
 * the second time: only differences are written.
 */

export interface RepriceOptions {
  from: number;
  to: number;
  model?: string;
  /** The catalogue provider of each upstream name (rows of an unknown upstream match by model name). */
  providers: ReadonlyMap<string, CatalogProvider>;
  /** Rows per batch (one transaction each). */
  batchRows?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface RepriceOutcome {
  rows: number;
  changedRows: number;
  /** New cost minus old, nano-USD. */
  costDeltaNanos: number;
}

interface Delta {
  hour: number;
  user_id: string;
  user_name: string;
  source: string;
  api_key_id: string;
  api_key_name: string;
  model: string;
  cost: number;
  unpriced: number;
}

export async function repriceUsage(
  db: Db,
  book: PriceBook,
  options: RepriceOptions,
): Promise<RepriceOutcome> {
  const batchRows = options.batchRows ?? 1000;
  let countQuery = db.kysely
    .selectFrom('usage_records')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('created_at', '>=', options.from)
    .where('created_at', '<', options.to);
  if (options.model !== undefined) countQuery = countQuery.where('model', '=', options.model);
  const total = Number((await countQuery.executeTakeFirst())?.n ?? 0);
  const outcome: RepriceOutcome = { rows: 0, changedRows: 0, costDeltaNanos: 0 };
  const counts: CostCounts = { prompt: 0, completion: 0, cached: 0, cacheWrite: 0, reasoning: 0 };
  let page = db.kysely
    .selectFrom('usage_records')
    .select([
      'id',
      'created_at',
      'user_id',
      'user_name',
      'source',
      'api_key_id',
      'api_key_name',
      'model',
      'upstream',
      'prompt_tokens',
      'completion_tokens',
      'cached_tokens',
      'cache_write_tokens',
      'reasoning_tokens',
      'cost_nanos',
      'price_source',
    ])
    .where('created_at', '>=', options.from)
    .where('created_at', '<', options.to);
  if (options.model !== undefined) page = page.where('model', '=', options.model);
  for await (const rows of keysetPages(page, batchRows)) {
    const changes: { id: string; cost: number | null; source: PriceSource }[] = [];
    const deltas = new Map<string, Delta>();
    for (const row of rows) {
      counts.prompt = Number(row.prompt_tokens);
      counts.completion = Number(row.completion_tokens);
      counts.cached = Number(row.cached_tokens ?? 0);
      counts.cacheWrite = Number(row.cache_write_tokens ?? 0);
      counts.reasoning = Number(row.reasoning_tokens ?? 0);
      const createdAt = Number(row.created_at);
      const priced = book.costOf(row.model, options.providers.get(row.upstream), createdAt, counts);
      const oldCost = row.cost_nanos === null ? null : Number(row.cost_nanos);
      if (priced.costNanos === oldCost && priced.source === row.price_source) continue;
      changes.push({ id: row.id, cost: priced.costNanos, source: priced.source });
      const costDelta = (priced.costNanos ?? 0) - (oldCost ?? 0);
      const unpricedDelta = (priced.source === 'none' ? 1 : 0) - (row.price_source === 'none' ? 1 : 0);
      outcome.costDeltaNanos += costDelta;
      const hour = hourStart(createdAt);
      const apiKeyId = row.api_key_id ?? '';
      const key = JSON.stringify([
        hour,
        row.user_id,
        row.user_name,
        row.source,
        apiKeyId,
        row.api_key_name,
        row.model,
      ]);
      const delta = deltas.get(key);
      if (delta) {
        delta.cost += costDelta;
        delta.unpriced += unpricedDelta;
      } else {
        deltas.set(key, {
          hour,
          user_id: row.user_id,
          user_name: row.user_name,
          source: row.source,
          api_key_id: apiKeyId,
          api_key_name: row.api_key_name,
          model: row.model,
          cost: costDelta,
          unpriced: unpricedDelta,
        });
      }
    }
    if (changes.length > 0) {
      await db.kysely.transaction().execute(async (trx) => {
        for (const change of changes) {
          await trx
            .updateTable('usage_records')
            .set({ cost_nanos: change.cost, price_source: change.source })
            .where('id', '=', change.id)
            .execute();
        }
        for (const delta of deltas.values()) {
          if (delta.cost === 0 && delta.unpriced === 0) continue;
          await trx
            .updateTable('usage_rollups_hourly')
            .set((eb) => ({
              cost_nanos: eb('cost_nanos', '+', delta.cost),
              unpriced_count: eb('unpriced_count', '+', delta.unpriced),
            }))
            .where('hour', '=', delta.hour)
            .where('user_id', '=', delta.user_id)
            .where('user_name', '=', delta.user_name)
            .where('source', '=', delta.source)
            .where('api_key_id', '=', delta.api_key_id)
            .where('api_key_name', '=', delta.api_key_name)
            .where('model', '=', delta.model)
            .execute();
        }
      });
    }
    outcome.rows += rows.length;
    outcome.changedRows += changes.length;
    options.onProgress?.(outcome.rows, total);
  }
  return outcome;
}
