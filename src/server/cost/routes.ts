import type { FastifyInstance } from 'fastify';
import { PriceInput } from '../../shared/cost.ts';
import { requireAdmin } from '../auth/guards.ts';
import { AUTH_BODY_LIMIT_BYTES } from '../auth/protection.ts';
import { parseInput } from '../auth/validation.ts';
import type { AppDeps } from '../deps.ts';
import { configPrices } from '../gateway/upstream-config.ts';
import { PriceBook } from './price-book.ts';
import { createPriceEvents } from './price-events.ts';
import {
  addPrice,
  type CostRuntime,
  configAdminPrices,
  deletePrice,
  listPrices,
  reloadPrices,
} from './prices.service.ts';

/**
 * The price book (YAML `prices:` + the database's admin prices + the catalogue) and the admin prices
 * API. Returns the book, which the gateway uses to price every row at record time.
 */
export async function registerCost(app: FastifyInstance, deps: AppDeps): Promise<PriceBook> {
  const book = new PriceBook(configAdminPrices(configPrices(deps.config)));
  await reloadPrices(deps.db, book);
  const events = await createPriceEvents({
    db: deps.db,
    databaseUrl: deps.config.databaseUrl,
    logger: deps.logger,
    reload: () => reloadPrices(deps.db, book),
  });
  app.addHook('onClose', async () => {
    await events.close();
  });
  const rt: CostRuntime = { db: deps.db, book, events, now: () => deps.now?.() ?? Date.now() };
  const opts = { bodyLimit: AUTH_BODY_LIMIT_BYTES };

  app.get('/api/auth/admin/prices', async (request) => {
    requireAdmin(request);
    return listPrices(rt);
  });

  app.put('/api/auth/admin/prices', opts, async (request) => {
    const admin = requireAdmin(request);
    return addPrice(rt, parseInput(PriceInput, request.body), admin.user.id);
  });

  app.delete<{ Params: { id: string } }>('/api/auth/admin/prices/:id', opts, async (request) => {
    requireAdmin(request);
    await deletePrice(rt, request.params.id);
    return { message: 'price deleted' };
  });
  return book;
}
