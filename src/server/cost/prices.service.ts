import { randomUUID } from 'node:crypto';
import type { PriceDto, PriceInput, PricesResponse } from '../../shared/cost.ts';
import type { Db } from '../db/connection.ts';
import type { PriceRow } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import type { AdminPrice, PriceBook } from './price-book.ts';
import type { PriceEvents } from './price-events.ts';
import { deletePriceRow, findUnpricedModels, insertPriceRow, listPriceRows } from './prices.repository.ts';
import { microsOf } from './rates.ts';

const DAY_MS = 86_400_000;

export interface CostRuntime {
  db: Db;
  book: PriceBook;
  events: PriceEvents;
  now: () => number;
}

/** YAML `prices:` entries (validated by the config schema) as admin prices; ids are stable per file position. */
export function configAdminPrices(entries: readonly PriceInput[]): AdminPrice[] {
  return entries.map((entry, index) => ({
    id: `config-${index + 1}`,
    model: entry.model,
    input: microsOf(entry.input),
    output: microsOf(entry.output),
    cachedInput: entry.cached_input === undefined ? null : microsOf(entry.cached_input),
    cacheWrite: entry.cache_write === undefined ? null : microsOf(entry.cache_write),
    // Without a time, a configured price applies to every row (it is the deployment's price list).
    effectiveFrom: entry.effective_from === undefined ? 0 : parseTime(entry.effective_from),
    origin: 'config',
  }));
}

function parseTime(value: string): number {
  return Date.parse(value.replace(' ', 'T'));
}

function adminPriceOf(row: PriceRow): AdminPrice {
  return {
    id: row.id,
    model: row.model,
    input: row.input_micros,
    output: row.output_micros,
    cachedInput: row.cached_input_micros,
    cacheWrite: row.cache_write_micros,
    effectiveFrom: row.effective_from,
    origin: 'api',
  };
}

const usdPerMillion = (micros: number): number => micros / 1e6;

function toPriceDto(price: AdminPrice, createdAt: number | null): PriceDto {
  return {
    id: price.id,
    model: price.model,
    input: usdPerMillion(price.input),
    output: usdPerMillion(price.output),
    cached_input: price.cachedInput === null ? null : usdPerMillion(price.cachedInput),
    cache_write: price.cacheWrite === null ? null : usdPerMillion(price.cacheWrite),
    effective_from: new Date(price.effectiveFrom).toISOString(),
    origin: price.origin,
    created_at: createdAt === null ? null : new Date(createdAt).toISOString(),
  };
}

/** Reads the database's prices into the book (start-up, after a change, on another instance's notice). */
export async function reloadPrices(db: Db, book: PriceBook): Promise<void> {
  book.setApiPrices((await listPriceRows(db)).map(adminPriceOf));
}

const NO_TOKENS = { prompt: 0, completion: 0, cached: 0, cacheWrite: 0, reasoning: 0 };

export async function listPrices(rt: CostRuntime): Promise<PricesResponse> {
  const now = rt.now();
  const rows = await listPriceRows(rt.db);
  const configured = rt.book.adminPrices().filter((price) => price.origin === 'config');
  return {
    prices: [
      ...configured.map((price) => toPriceDto(price, null)),
      ...rows.map((row) => toPriceDto(adminPriceOf(row), row.created_at)),
    ],
    // Those an admin price now covers are left out (requests from now on get it).
    unpriced_models: (await findUnpricedModels(rt.db, now - 30 * DAY_MS)).filter(
      (model) => rt.book.costOf(model, null, now, NO_TOKENS).source === 'none',
    ),
  };
}

/** Adds a version (prices are never edited in place); it applies to rows recorded from its time on. */
export async function addPrice(rt: CostRuntime, input: PriceInput, createdBy: string): Promise<PriceDto> {
  const now = rt.now();
  const row: PriceRow = {
    id: randomUUID(),
    model: input.model,
    input_micros: microsOf(input.input),
    output_micros: microsOf(input.output),
    cached_input_micros: input.cached_input === undefined ? null : microsOf(input.cached_input),
    cache_write_micros: input.cache_write === undefined ? null : microsOf(input.cache_write),
    effective_from: input.effective_from === undefined ? now : parseTime(input.effective_from),
    created_at: now,
    created_by: createdBy,
  };
  await insertPriceRow(rt.db, row);
  await changed(rt);
  return toPriceDto(adminPriceOf(row), row.created_at);
}

export async function deletePrice(rt: CostRuntime, id: string): Promise<void> {
  if (!(await deletePriceRow(rt.db, id))) {
    throw new NotFoundError(
      id.startsWith('config-')
        ? 'price not found (prices from the configuration file are changed in that file)'
        : 'price not found',
    );
  }
  await changed(rt);
}

async function changed(rt: CostRuntime): Promise<void> {
  await reloadPrices(rt.db, rt.book);
  await rt.events.publish();
}
