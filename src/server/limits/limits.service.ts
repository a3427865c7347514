import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  KeyLimitPolicy,
  type KeyLimitsStatus,
  type LimitUsage,
  type QuotaStatus,
  type UserLimitsStatus,
} from '../../shared/limits.ts';
import type { AuthContext } from '../auth/context.ts';
import { iso } from '../auth/dto.ts';
import type { Config } from '../config.ts';
import type { CatalogProvider, PriceBook } from '../cost/price-book.ts';
import type { Db } from '../db/connection.ts';
import { hourStart } from '../db/hours.ts';
import { loadTokenizer, promptBytes, promptTokensNow, tokenizerLoaded } from '../gateway/tokens.ts';
import type { UsageRecorder } from '../usage/recorder.ts';
import { createLimitEventSink } from './events.ts';
import { createLeaseStore, type LeasedAllowance, type LeaseStore } from './leases.ts';
import { Limiter, type Ticket } from './limiter.ts';
import {
  addRejections,
  countRejections,
  getPolicyValue,
  listKeyLimits,
  listQuotaRules,
  listUserLimits,
  sumSince,
  userBucketsSince,
  userLimitsOf,
} from './limits.repository.ts';
import { buildKey, buildQuota, buildUser, type LoaderDeps } from './loader.ts';
import { type Meter, NANOS_PER_USD, type RequestAmounts } from './meter.ts';
import { PeriodCounter, type RollingCounter } from './meters.ts';
import { formatQuotaWindow } from './windows.ts';

/** The limits of one app: the limiter plus what loads, rebuilds and reports it. */
export interface Limits {
  limiter: Limiter;
  /**
   * Admission of one inference request: null when no limit applies (no work at all), a ticket, or a
   * LimitExceededError thrown. A promise only when a token or cost limit needs the prompt counted,
   * or a shared budget needs a lease.
   */
  admit(
    auth: AuthContext,
    model: string,
    body: Record<string, unknown>,
    reply: FastifyReply,
    provider?: CatalogProvider,
  ): Ticket | null | Promise<Ticket>;
  /** Re-reads one key's limits (after a change here or on another instance). */
  reloadKey(keyId: string): Promise<void>;
  /** Re-reads one user's quota rules and budgets. */
  reloadUser(userId: string): Promise<void>;
  reloadAll(): Promise<void>;
  keyStatuses(keys: readonly { id: string; name: string; userId: string }[]): Promise<KeyLimitsStatus[]>;
  userStatus(userId: string): Promise<UserLimitsStatus>;
  quotaStatuses(userId: string): QuotaStatus[];
  policy(): Promise<KeyLimitPolicy>;
  close(): Promise<void>;
}

export interface LimitsOptions {
  db: Db;
  config: Config;
  logger: Logger;
  recorder: UsageRecorder;
  registry: Registry;
  prices?: PriceBook;
  now: () => number;
}

// Rejections are written per key and hour every 5 s: 429s can come in floods, one row per hour each.
const REJECTIONS_FLUSH_MS = 5000;
// An instance idle for 1 s gives its unused slices back, so another instance can spend them.
const LEASE_IDLE_MS = 1000;
// Quota rules on several instances: each takes in the others' recorded usage this often.
const QUOTA_REFRESH_MS = 2000;

const completionFields = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;
// What a request reserves against request-counting limits alone (rpm, max_parallel, quota requests).
const NOTHING: RequestAmounts = { tokens: 0, nanos: 0 };

/** What a request may produce: its `max_tokens` (any spelling, Ollama's `num_predict`), else the configured default. */
export function completionAllowance(body: Record<string, unknown>, fallback: number): number {
  for (const field of completionFields) {
    const value = body[field];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  // Ollama's native API: options.num_predict (-1 or absent: unbounded, so the default).
  const options = body.options;
  if (options && typeof options === 'object') {
    const value = (options as Record<string, unknown>).num_predict;
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  return fallback;
}

export async function createLimits(options: LimitsOptions): Promise<Limits> {
  const { db, config, logger, now, prices } = options;
  const events = createLimitEventSink({
    registry: options.registry,
    logger,
    webhook: config.webhookUrl ? { url: config.webhookUrl, secret: config.webhookSecret ?? '' } : undefined,
  });
  const pendingRejections = new Map<string, number>();
  const limiter = new Limiter({
    now,
    events,
    loadCounter: loadTokenizer,
    noteRejected: (keyId) => pendingRejections.set(keyId, (pendingRejections.get(keyId) ?? 0) + 1),
  });
  // Several instances share budgets only on PostgreSQL; SQLite is one instance.
  const leases: LeaseStore | null = db.dialect === 'postgres' ? createLeaseStore(db) : null;
  const onLeaseError = (error: unknown) =>
    logger.warn({ err: error }, 'could not update a shared budget lease');
  const loader: LoaderDeps = { db, now, leases, onLeaseError };
  let rejectionHour = hourStart(now());

  const loadUser = async (userId?: string) => {
    const quotas = new Map<string, Awaited<ReturnType<typeof buildQuota>>[]>();
    for (const rule of await listQuotaRules(db, userId)) {
      const list = quotas.get(rule.user_id) ?? [];
      list.push(await buildQuota(loader, rule));
      quotas.set(rule.user_id, list);
    }
    const budgets = new Map<string, Meter[]>();
    for (const row of await listUserLimits(db, userId))
      budgets.set(row.user_id, await buildUser(loader, row));
    return { quotas, budgets };
  };

  const loadAll = async () => {
    // Rows still in the journal (a kill -9, a SIGTERM that could not flush) go to the database
    // first, so the counters below include them.
    await options.recorder.flushNow();
    const keys = new Map<string, Awaited<ReturnType<typeof buildKey>>>();
    for (const record of await listKeyLimits(db)) keys.set(record.api_key_id, await buildKey(loader, record));
    const { quotas, budgets } = await loadUser();
    limiter.keys.clear();
    limiter.quotas.clear();
    limiter.users.clear();
    for (const [id, state] of keys) limiter.keys.set(id, state);
    for (const [id, list] of quotas) limiter.quotas.set(id, list);
    for (const [id, list] of budgets) limiter.users.set(id, list);
  };
  await loadAll();

  const flushRejections = async () => {
    if (pendingRejections.size === 0) return;
    const hour = rejectionHour;
    const entries = [...pendingRejections].map(([keyId, count]) => ({ keyId, hour, count }));
    pendingRejections.clear();
    rejectionHour = hourStart(now());
    try {
      await addRejections(db, entries);
    } catch (error) {
      for (const entry of entries) {
        pendingRejections.set(entry.keyId, (pendingRejections.get(entry.keyId) ?? 0) + entry.count);
      }
      logger.warn({ err: error }, 'could not write rejected-request counts; retried');
    }
  };

  const leasedMeters = (): Meter[] => {
    const out: Meter[] = [];
    for (const state of limiter.keys.values())
      for (const meter of state.meters) if (meter.lease) out.push(meter);
    for (const meters of limiter.users.values()) for (const meter of meters) if (meter.lease) out.push(meter);
    return out;
  };
  const giveBack = async (meters: Meter[], idleOnly: boolean) => {
    const at = now();
    for (const meter of meters) {
      const lease = meter.lease as LeasedAllowance | null;
      if (!lease || (idleOnly && at - lease.lastActive < LEASE_IDLE_MS)) continue;
      await lease.giveBack(meter.reserved).catch(onLeaseError);
    }
  };

  /**
   * Several instances (PostgreSQL): quota windows take in what the others recorded, from the
   * database every QUOTA_REFRESH_MS (a bucket keeps the larger of its own and the database's count).
   */
  const refreshQuotas = async () => {
    for (const [userId, list] of limiter.quotas) {
      for (const quota of list) {
        const counter = quota.requests.counter as RollingCounter;
        const buckets = await userBucketsSince(db, {
          userId,
          model: quota.rule.model,
          since: now() - counter.windowMs,
          bucketMs: counter.bucketMs,
        });
        for (const bucket of buckets) {
          (quota.requests.counter as RollingCounter).raise(bucket.at, bucket.requests);
          (quota.tokens.counter as RollingCounter).raise(bucket.at, bucket.tokens);
        }
      }
    }
  };
  let refreshing = false;
  const timers = [
    setInterval(() => void flushRejections(), REJECTIONS_FLUSH_MS),
    ...(leases
      ? [
          setInterval(() => void giveBack(leasedMeters(), true), LEASE_IDLE_MS),
          setInterval(() => {
            if (refreshing) return;
            refreshing = true;
            refreshQuotas()
              .catch((error: unknown) => logger.warn({ err: error }, 'could not refresh quota counts'))
              .finally(() => {
                refreshing = false;
              });
          }, QUOTA_REFRESH_MS),
        ]
      : []),
  ];
  for (const timer of timers) timer.unref();

  /** The period's usage of a budget: this instance's count, or the database's when that is more. */
  const budgetUsed = async (meter: Meter, who: { keyId: string } | { userId: string }, at: number) => {
    let used = meter.used(at);
    if (leases && meter.counter instanceof PeriodCounter) {
      // Other instances' usage reaches this one through the database.
      const sums = await sumSince(db, who, meter.counter.periodStart(at));
      used = Math.max(used, meter.unit === 'nanos' ? sums.nanos : sums.tokens);
    }
    return used;
  };

  const usageOf = async (meters: Meter[], who: { keyId: string } | { userId: string }) => {
    const at = now();
    const usage: LimitUsage[] = [];
    let soft = false;
    let exhausted = false;
    for (const meter of meters) {
      const used = meter.limit === 'max_parallel' ? meter.reserved : await budgetUsed(meter, who, at);
      const resetsAt = meter.counter ? meter.counter.clearsAt(at) : null;
      const dollars = meter.unit === 'nanos';
      usage.push({
        limit: meter.limit.replace(/^user_/, '') as LimitUsage['limit'],
        used: dollars ? used / NANOS_PER_USD : used,
        max: dollars ? meter.max / NANOS_PER_USD : meter.max,
        resets_at: resetsAt === null ? null : iso(resetsAt),
      });
      if (meter.counter instanceof PeriodCounter) {
        if (meter.softPercent !== null && used * 100 >= meter.softPercent * meter.max) soft = true;
        if (used >= meter.max) exhausted = true;
      }
    }
    return { usage, soft_exceeded: soft, exhausted };
  };

  /** What a request may use: tokens, and priced like usage when a USD limit applies (`priced`: its model). */
  const amountsOf = (
    prompt: number,
    completion: number,
    priced: string | null,
    provider: CatalogProvider | undefined,
  ): RequestAmounts => {
    if (priced === null) return { tokens: prompt + completion, nanos: 0 };
    const counts = { prompt, completion, cached: 0, cacheWrite: 0, reasoning: 0 };
    const nanos = prices ? prices.costOf(priced, provider, now(), counts).costNanos : null;
    return { tokens: prompt + completion, nanos };
  };

  return {
    limiter,
    admit(auth, model, body, reply, provider) {
      const meters = limiter.metersFor(auth, model);
      if (!meters) return null;
      const userId = auth.user.id;
      const keyId = auth.apiKey?.id ?? null;
      let tokens = false;
      let dollars = false;
      for (const meter of meters) {
        if (meter.unit === 'tokens') tokens = true;
        else if (meter.unit === 'nanos') dollars = true;
      }
      if (!tokens && !dollars) return limiter.reserve(meters, userId, keyId, NOTHING, reply);
      const completion = completionAllowance(body, config.defaultCompletionTokens);
      const priced = dollars ? model : null;
      if (priced !== null) limiter.admittingModel(priced);
      // The prompt's bytes bound its tokens: reserved while every limit has room (no tokenizer, ~30 MB
      // and microseconds a request, on the request path); counted exactly when a limit gets close.
      const bound = amountsOf(promptBytes(body), completion, priced, provider);
      return limiter.reserve(meters, userId, keyId, bound, reply, () =>
        tokenizerLoaded() ? amountsOf(promptTokensNow(body).tokens, completion, priced, provider) : null,
      );
    },
    async reloadKey(keyId) {
      // The old meters' unspent slices go back first: the new ones take their own.
      await giveBack(limiter.keys.get(keyId)?.meters ?? [], false);
      await options.recorder.flushNow();
      const [record] = await listKeyLimits(db, keyId);
      if (record) {
        const state = await buildKey(loader, record);
        limiter.keys.set(keyId, state);
      } else limiter.keys.delete(keyId);
    },
    async reloadUser(userId) {
      await giveBack(limiter.users.get(userId) ?? [], false);
      await options.recorder.flushNow();
      const { quotas, budgets } = await loadUser(userId);
      const rules = quotas.get(userId);
      if (rules) limiter.quotas.set(userId, rules);
      else limiter.quotas.delete(userId);
      const meters = budgets.get(userId);
      if (meters) limiter.users.set(userId, meters);
      else limiter.users.delete(userId);
    },
    async reloadAll() {
      await giveBack(leasedMeters(), false);
      await loadAll();
    },
    async keyStatuses(keys) {
      const at = now();
      const rejected = await countRejections(
        db,
        keys.map((key) => key.id),
        hourStart(at - 23 * 3_600_000),
      );
      const out: KeyLimitsStatus[] = [];
      for (const key of keys) {
        const state = limiter.keys.get(key.id);
        if (!state) continue;
        out.push({
          id: key.id,
          limits: state.limits,
          ...(await usageOf(state.meters, { keyId: key.id })),
          rejected: (rejected.get(key.id) ?? 0) + (pendingRejections.get(key.id) ?? 0),
        });
      }
      return out;
    },
    async userStatus(userId) {
      const [row] = await listUserLimits(db, userId);
      const limits = row
        ? userLimitsOf(row)
        : { token_budget: null, usd_budget: null, budget_window: 'month' as const, soft_threshold: null };
      return { user_id: userId, limits, ...(await usageOf(limiter.users.get(userId) ?? [], { userId })) };
    },
    quotaStatuses(userId) {
      const at = now();
      return limiter.quotasOf(userId).map((quota) => {
        const { rule } = quota;
        // When the oldest counted row leaves the window, or, over a limit, when enough of it has.
        let resetsAt = at;
        for (const meter of [quota.requests, quota.tokens]) {
          if (!Number.isFinite(meter.max) || !meter.counter) continue;
          const used = meter.used(at);
          const excess = used >= meter.max ? used - meter.max + 1 : Math.min(used, 1);
          const frees = meter.counter.freesAt(at, excess);
          if (Number.isFinite(frees)) resetsAt = Math.max(resetsAt, frees);
        }
        return {
          id: rule.id,
          model: rule.model,
          max_requests: rule.maxRequests,
          max_total_tokens: rule.maxTotalTokens,
          window: formatQuotaWindow(rule.windowSeconds),
          current_requests: quota.requests.used(at),
          current_total_tokens: quota.tokens.used(at),
          resets_at: new Date(Math.ceil(resetsAt / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
        };
      });
    },
    async policy() {
      const stored = await getPolicyValue(db, 'keys');
      return KeyLimitPolicy.parse(stored ? JSON.parse(stored) : {});
    },
    async close() {
      for (const timer of timers) clearInterval(timer);
      await flushRejections();
      await giveBack(leasedMeters(), false);
      await events.close();
    },
  };
}
