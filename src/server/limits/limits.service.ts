import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  KeyLimitPolicy,
  type KeyLimits,
  type KeyLimitsStatus,
  type LimitUsage,
  type QuotaStatus,
} from '../../shared/limits.ts';
import type { AuthContext } from '../auth/context.ts';
import { iso } from '../auth/dto.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/connection.ts';
import { hourStart } from '../db/hours.ts';
import { estimatePromptTokens } from '../gateway/tokens.ts';
import type { UsageRecorder } from '../usage/recorder.ts';
import { createLimitEventSink, type LimitEventSink } from './events.ts';
import { createLeaseStore, LeasedAllowance, type LeaseStore } from './leases.ts';
import {
  type KeyState,
  keyMeters,
  Limiter,
  type Meter,
  type QuotaMeters,
  quotaMeters,
  type Ticket,
} from './limiter.ts';
import {
  addRejections,
  countRejections,
  getPolicyValue,
  keyRowsSince,
  listKeyLimits,
  listQuotaRules,
  sumKeyTokensSince,
  userBucketsSince,
} from './limits.repository.ts';
import { PeriodCounter, RollingCounter } from './meters.ts';
import { formatQuotaWindow } from './windows.ts';

/** The limits of one app: the limiter plus what loads, rebuilds and reports it. */
export interface Limits {
  limiter: Limiter;
  /**
   * Admission of one inference request: null when no limit applies (no work at all), a ticket, or a
   * LimitExceededError thrown. A promise only when a token limit needs the prompt counted or a
   * shared budget needs a lease.
   */
  admit(
    auth: AuthContext,
    model: string,
    body: Record<string, unknown>,
    reply: FastifyReply,
  ): Ticket | null | Promise<Ticket>;
  /** Re-reads one key's limits (after a change here or on another instance). */
  reloadKey(keyId: string): Promise<void>;
  reloadUser(userId: string): Promise<void>;
  reloadAll(): Promise<void>;
  keyStatuses(keys: readonly { id: string; name: string; userId: string }[]): Promise<KeyLimitsStatus[]>;
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
  now: () => number;
}

// Rejections are written per key and hour every 5 s: 429s can come in floods, one row per hour each.
const REJECTIONS_FLUSH_MS = 5000;
// An instance idle for 1 s gives its unused slices back, so another instance can spend them.
const LEASE_IDLE_MS = 1000;

const completionFields = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;

/** What a request may produce: its `max_tokens` (any of the spellings), else the configured default. */
export function completionAllowance(
  body: Record<string, unknown>,
  fallback: number,
  endpoint?: string,
): number {
  if (endpoint === '/embeddings') return 0;
  for (const field of completionFields) {
    const value = body[field];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  return fallback;
}

export async function createLimits(options: LimitsOptions): Promise<Limits> {
  const { db, config, logger, now } = options;
  const events: LimitEventSink = createLimitEventSink({
    registry: options.registry,
    logger,
    webhook: config.webhookUrl ? { url: config.webhookUrl, secret: config.webhookSecret ?? '' } : undefined,
  });
  const pendingRejections = new Map<string, number>();
  const limiter = new Limiter({
    now,
    events,
    noteRejected: (keyId) => pendingRejections.set(keyId, (pendingRejections.get(keyId) ?? 0) + 1),
  });
  // Several instances share budgets only on PostgreSQL; SQLite is one instance.
  const leases: LeaseStore | null = db.dialect === 'postgres' ? createLeaseStore(db) : null;
  const leaseError = (error: unknown) =>
    logger.warn({ err: error }, 'could not update a shared budget lease');
  let rejectionHour = hourStart(now());

  const buildKey = async (record: Awaited<ReturnType<typeof listKeyLimits>>[number]): Promise<KeyState> => {
    const limits: KeyLimits = {
      rpm: record.rpm,
      tpm: record.tpm,
      max_parallel: record.max_parallel,
      token_budget: record.token_budget,
      budget_window: record.budget_window as KeyLimits['budget_window'],
      soft_threshold: record.soft_threshold,
    };
    const owner = {
      userId: record.user_id,
      keyId: record.api_key_id,
      keyName: record.name,
      quotaId: null,
      model: '',
    };
    const meters = keyMeters(owner, limits);
    const at = now();
    for (const meter of meters) {
      if (meter.counter instanceof RollingCounter) {
        for (const row of await keyRowsSince(db, record.api_key_id, at - 60_000)) {
          meter.counter.add(row.at, meter.limit === 'rpm' ? 1 : row.tokens);
        }
      } else if (meter.counter instanceof PeriodCounter) {
        const { start } = meter.counter.period(at);
        const used = await sumKeyTokensSince(db, record.api_key_id, start);
        meter.counter.add(at, used);
        if (leases) {
          const id = `key:${record.api_key_id}:tokens`;
          await leases.init(id, start, used);
          const counter = meter.counter;
          meter.lease = new LeasedAllowance(id, counter, () => meter.max, leases, leaseError);
        }
      }
    }
    return { limits, meters };
  };

  const buildQuota = async (
    rule: Awaited<ReturnType<typeof listQuotaRules>>[number],
  ): Promise<QuotaMeters> => {
    const quota = quotaMeters({
      id: rule.id,
      userId: rule.user_id,
      model: rule.model,
      maxRequests: rule.max_requests,
      maxTotalTokens: rule.max_total_tokens,
      windowSeconds: rule.window_seconds,
    });
    const counter = quota.requests.counter as RollingCounter;
    const at = now();
    const buckets = await userBucketsSince(db, {
      userId: rule.user_id,
      model: rule.model,
      since: at - counter.windowMs,
      bucketMs: counter.bucketMs,
    });
    for (const bucket of buckets) {
      quota.requests.counter?.add(bucket.at, bucket.requests);
      quota.tokens.counter?.add(bucket.at, bucket.tokens);
    }
    return quota;
  };

  const loadAll = async () => {
    // Rows still in the journal (a kill -9, a SIGTERM that could not flush) go to the database
    // first, so the counters below include them.
    await options.recorder.flushNow();
    for (const record of await listKeyLimits(db)) limiter.keys.set(record.api_key_id, await buildKey(record));
    const byUser = new Map<string, QuotaMeters[]>();
    for (const rule of await listQuotaRules(db)) {
      const list = byUser.get(rule.user_id) ?? [];
      list.push(await buildQuota(rule));
      byUser.set(rule.user_id, list);
    }
    for (const [userId, list] of byUser) limiter.quotas.set(userId, list);
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
      for (const entry of entries)
        pendingRejections.set(entry.keyId, (pendingRejections.get(entry.keyId) ?? 0) + entry.count);
      logger.warn({ err: error }, 'could not write rejected-request counts; retried');
    }
  };

  const leasedMeters = (): Meter[] => {
    const out: Meter[] = [];
    for (const state of limiter.keys.values())
      for (const meter of state.meters) if (meter.lease) out.push(meter);
    return out;
  };

  const giveBackIdle = async (all: boolean) => {
    const at = now();
    for (const meter of leasedMeters()) {
      const lease = meter.lease as LeasedAllowance;
      if (all || at - lease.lastActive >= LEASE_IDLE_MS)
        await lease.giveBack(meter.reserved).catch(leaseError);
    }
  };

  const timers = [
    setInterval(() => void flushRejections(), REJECTIONS_FLUSH_MS),
    ...(leases ? [setInterval(() => void giveBackIdle(false), LEASE_IDLE_MS)] : []),
  ];
  for (const timer of timers) timer.unref();

  return {
    limiter,
    admit(auth, model, body, reply) {
      const meters = limiter.metersFor(auth, model);
      if (!meters) return null;
      const who = { userId: auth.user.id, keyId: auth.apiKey?.id ?? null };
      if (!meters.some((meter) => meter.unit === 'tokens')) return limiter.reserve(meters, who, 0, reply);
      const completion = completionAllowance(body, config.defaultCompletionTokens);
      return estimatePromptTokens(body).then((prompt) =>
        limiter.reserve(meters, who, prompt + completion, reply),
      );
    },
    async reloadKey(keyId) {
      // The old meters' unspent slices go back first: the new ones take their own.
      for (const meter of limiter.keys.get(keyId)?.meters ?? []) await meter.lease?.giveBack(meter.reserved);
      await options.recorder.flushNow();
      const [record] = await listKeyLimits(db, keyId);
      if (record) limiter.keys.set(keyId, await buildKey(record));
      else limiter.keys.delete(keyId);
    },
    async reloadUser(userId) {
      await options.recorder.flushNow();
      const rules = await Promise.all((await listQuotaRules(db, userId)).map(buildQuota));
      if (rules.length > 0) limiter.quotas.set(userId, rules);
      else limiter.quotas.delete(userId);
    },
    async reloadAll() {
      limiter.keys.clear();
      limiter.quotas.clear();
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
        const usage: LimitUsage[] = [];
        let soft = false;
        let exhausted = false;
        for (const meter of state.meters) {
          let used = meter.limit === 'max_parallel' ? meter.reserved : meter.used(at);
          if (meter.counter instanceof PeriodCounter && leases) {
            // Other instances' usage reaches this one through the database.
            used = Math.max(used, await sumKeyTokensSince(db, key.id, meter.counter.period(at).start));
          }
          const resetsAt = meter.counter ? meter.counter.clearsAt(at) : null;
          usage.push({
            limit: meter.limit as LimitUsage['limit'],
            used,
            max: meter.max,
            resets_at: resetsAt === null ? null : iso(resetsAt),
          });
          if (meter.limit === 'token_budget') {
            if (meter.softPercent !== null && used * 100 >= meter.softPercent * meter.max) soft = true;
            if (used >= meter.max) exhausted = true;
          }
        }
        out.push({
          id: key.id,
          limits: state.limits,
          usage,
          soft_exceeded: soft,
          exhausted,
          rejected: (rejected.get(key.id) ?? 0) + (pendingRejections.get(key.id) ?? 0),
        });
      }
      return out;
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
      if (leases) await giveBackIdle(true);
      await events.close();
    },
  };
}
