import type { FastifyInstance } from 'fastify';
import type { KeyLimits } from '../../shared/limits.ts';
import type { AuthContext } from '../auth/context.ts';
import type { Config } from '../config.ts';
import type { PriceBook } from '../cost/price-book.ts';
import type { Db } from '../db/connection.ts';
import type { AppDeps } from '../deps.ts';
import { metricsFor } from '../metrics/registry.ts';
import { createLimitChanges, type LimitChanges } from './invalidation.ts';
import { upsertKeyLimits } from './limits.repository.ts';
import { createLimits, type Limits } from './limits.service.ts';
import { limitsForNewKey, registerLimitRoutes } from './routes.ts';

const limitsByConfig = new WeakMap<Config, { limits: Limits; changes: LimitChanges }>();

/** The limits of the app built with this config (the gateway and the auth routes reach it here). */
export function limitsOf(config: Config): Limits | undefined {
  return limitsByConfig.get(config)?.limits;
}

/** The limits a new key gets: those asked for (within the maximums), else the admin's defaults. */
export async function resolveNewKeyLimits(
  config: Config,
  auth: AuthContext,
  requested: KeyLimits | undefined,
): Promise<KeyLimits | null> {
  const found = limitsByConfig.get(config);
  return found ? limitsForNewKey(found.limits, auth, requested) : null;
}

/** Stores a new key's limits and makes every instance enforce them. */
export async function saveNewKeyLimits(
  config: Config,
  db: Db,
  keyId: string,
  limits: KeyLimits,
): Promise<void> {
  const found = limitsByConfig.get(config);
  if (!found) return;
  await upsertKeyLimits(db, keyId, limits, Date.now());
  await found.changes.publish({ kind: 'key', id: keyId });
}

/** Loads every limit (after the journal is in the database), listens for changes, adds the routes. */
export async function registerLimits(
  app: FastifyInstance,
  deps: AppDeps,
  prices: PriceBook,
): Promise<Limits> {
  const now = deps.now ?? Date.now;
  const limits = await createLimits({
    db: deps.db,
    config: deps.config,
    logger: deps.logger,
    recorder: deps.recorder,
    registry: metricsFor(deps, deps.recorder).registry,
    prices,
    now,
  });
  const changes = await createLimitChanges({
    db: deps.db,
    databaseUrl: deps.config.databaseUrl,
    logger: deps.logger,
    apply: async (change) => {
      if (change.kind === 'key') await limits.reloadKey(change.id);
      else if (change.kind === 'user') await limits.reloadUser(change.id);
      else await limits.reloadAll();
    },
  });
  limitsByConfig.set(deps.config, { limits, changes });
  registerLimitRoutes(app, { db: deps.db, limits, changes, now });
  app.addHook('onClose', async () => {
    await changes.close();
    await limits.close();
  });
  return limits;
}
