import type { Db } from '../db/connection.ts';
import type { ApiKeyLimitsRow, QuotaRuleRow, UserLimitsRow } from '../db/schema.ts';
import { LeasedAllowance, type LeaseStore } from './leases.ts';
import type { KeyState } from './limiter.ts';
import { keyLimitsOf, keyRowsSince, sumSince, userBucketsSince, userLimitsOf } from './limits.repository.ts';
import { keyMeters, type Meter, type QuotaMeters, quotaMeters, userMeters } from './meter.ts';
import { PeriodCounter, RollingCounter } from './meters.ts';

/**
 * Builds meters from the database: the limits, and the usage already counted in each window (the
 * rollups for budgets, raw rows for rates and quota rules). Run at start-up after the journal has
 * been committed, and whenever a limit changes here or on another instance.
 */
export interface LoaderDeps {
  db: Db;
  now: () => number;
  /** PostgreSQL: budgets are shared through leases; SQLite: null. */
  leases: LeaseStore | null;
  onLeaseError: (error: unknown) => void;
}

/** Fills a budget meter with the period's usage so far and, on PostgreSQL, attaches its lease. */
async function fillBudget(
  deps: LoaderDeps,
  meter: Meter,
  who: { keyId: string } | { userId: string },
  id: string,
) {
  const counter = meter.counter as PeriodCounter;
  const at = deps.now();
  const start = counter.periodStart(at);
  const sums = await sumSince(deps.db, who, start);
  const used = meter.unit === 'nanos' ? sums.nanos : sums.tokens;
  counter.add(at, used);
  if (deps.leases) {
    await deps.leases.init(id, start, used);
    meter.lease = new LeasedAllowance(id, counter, () => meter.max, deps.leases, deps.onLeaseError);
  }
}

export async function buildKey(
  deps: LoaderDeps,
  record: ApiKeyLimitsRow & { user_id: string; name: string },
): Promise<KeyState> {
  const limits = keyLimitsOf(record);
  const keyId = record.api_key_id;
  const owner = { userId: record.user_id, keyId, keyName: record.name, quotaId: null, model: '' };
  const meters = keyMeters(owner, limits);
  const at = deps.now();
  for (const meter of meters) {
    if (meter.counter instanceof RollingCounter) {
      for (const row of await keyRowsSince(deps.db, keyId, at - 60_000)) {
        meter.counter.add(row.at, meter.limit === 'rpm' ? 1 : row.tokens);
      }
    } else if (meter.counter instanceof PeriodCounter) {
      await fillBudget(deps, meter, { keyId }, `key:${keyId}:${meter.unit}`);
    }
  }
  return { limits, meters };
}

export async function buildUser(deps: LoaderDeps, row: UserLimitsRow): Promise<Meter[]> {
  const owner = { userId: row.user_id, keyId: null, keyName: '', quotaId: null, model: '' };
  const meters = userMeters(owner, userLimitsOf(row));
  for (const meter of meters)
    await fillBudget(deps, meter, { userId: row.user_id }, `user:${row.user_id}:${meter.unit}`);
  return meters;
}

export async function buildQuota(deps: LoaderDeps, rule: QuotaRuleRow): Promise<QuotaMeters> {
  const quota = quotaMeters({
    id: rule.id,
    userId: rule.user_id,
    model: rule.model,
    maxRequests: rule.max_requests,
    maxTotalTokens: rule.max_total_tokens,
    windowSeconds: rule.window_seconds,
  });
  const counter = quota.requests.counter as RollingCounter;
  const buckets = await userBucketsSince(deps.db, {
    userId: rule.user_id,
    model: rule.model,
    since: deps.now() - counter.windowMs,
    bucketMs: counter.bucketMs,
  });
  for (const bucket of buckets) {
    quota.requests.counter?.add(bucket.at, bucket.requests);
    quota.tokens.counter?.add(bucket.at, bucket.tokens);
  }
  return quota;
}
