import type { KeyLimits, UserLimits } from '../../shared/limits.ts';
import type { LimitEventKind } from './events.ts';
import type { LeasedAllowance } from './leases.ts';
import { PeriodCounter, RollingCounter, type UsageCounter } from './meters.ts';
import { formatQuotaWindow, goDuration } from './windows.ts';

/** One limit of a key, a user or a quota rule, and what it holds: settled usage and reservations. */

export type LimitName =
  | 'rpm'
  | 'tpm'
  | 'max_parallel'
  | 'token_budget'
  | 'usd_budget'
  | 'user_token_budget'
  | 'user_usd_budget'
  | 'quota_requests'
  | 'quota_tokens';

export const RATE_LIMITS: ReadonlySet<LimitName> = new Set(['rpm', 'tpm', 'max_parallel']);
export const NANOS_PER_USD = 1_000_000_000;

/** What a request reserves: its token estimate and, priced like usage, its cost. */
export interface RequestAmounts {
  tokens: number;
  /** Integer nano-USD; null when no price is known for the model. */
  nanos: number | null;
}

/** What a usage row adds when a request settles (the row itself: no copy per request). */
export interface SettledRow {
  model: string;
  total_tokens?: number | null;
  cost_nanos?: number | null;
}

export interface MeterOwner {
  userId: string;
  keyId: string | null;
  keyName: string;
  quotaId: string | null;
  /** Quota rules: '' = every model. */
  model: string;
}

const NO_CROSSINGS: readonly LimitEventKind[] = [];

export class Meter {
  reserved = 0;
  lease: LeasedAllowance | null = null;
  readonly unit: 'requests' | 'tokens' | 'nanos';
  /** `max` as header text, made once. */
  readonly maxText: string;
  private softMark = -1;
  private hardMark = -1;
  /** The last reset header text and its whole seconds (the same for a second of requests). */
  private resetSeconds = -1;
  private resetLabel = '';

  constructor(
    readonly limit: LimitName,
    readonly max: number,
    /** null for max_parallel, which counts only what is in flight. */
    readonly counter: UsageCounter | null,
    readonly window: string,
    readonly owner: MeterOwner,
    readonly softPercent: number | null,
  ) {
    this.maxText = String(max);
    this.unit =
      limit === 'tpm' || limit === 'token_budget' || limit === 'user_token_budget' || limit === 'quota_tokens'
        ? 'tokens'
        : limit === 'usd_budget' || limit === 'user_usd_budget'
          ? 'nanos'
          : 'requests';
  }

  /** OpenAI's reset format, rounded up to whole seconds past one second: `250ms`, `12s`, `6m0s`. */
  resetText(ms: number): string {
    if (ms < 1000) return `${Math.ceil(ms)}ms`;
    const seconds = Math.ceil(ms / 1000);
    if (seconds !== this.resetSeconds) {
      this.resetSeconds = seconds;
      this.resetLabel = seconds < 60 ? `${seconds}s` : goDuration(seconds * 1000);
    }
    return this.resetLabel;
  }

  need(amounts: RequestAmounts): number {
    return this.unit === 'tokens' ? amounts.tokens : this.unit === 'nanos' ? (amounts.nanos ?? 0) : 1;
  }

  amountOf(row: SettledRow): number {
    return this.unit === 'tokens'
      ? (row.total_tokens ?? 0)
      : this.unit === 'nanos'
        ? (row.cost_nanos ?? 0)
        : 1;
  }

  used(now: number): number {
    return this.counter ? this.counter.total(now) : 0;
  }

  fits(now: number, need: number): boolean {
    if (this.lease) return this.lease.fits(now, this.reserved, need);
    return this.used(now) + this.reserved + need <= this.max;
  }

  /** Epoch ms when `need` would fit again (reservations in flight assumed to settle as reserved). */
  retryAt(now: number, need: number): number {
    if (!this.counter) return now + 1000;
    if (need > this.max) return this.counter.clearsAt(now);
    return this.counter.freesAt(now, this.used(now) + this.reserved + need - this.max);
  }

  /** Which window a crossing belongs to (each is reported once per window). */
  private mark(now: number): number {
    if (this.counter instanceof PeriodCounter) return this.counter.periodStart(now);
    const windowMs = this.counter instanceof RollingCounter ? this.counter.windowMs : 60_000;
    return Math.floor(now / windowMs);
  }

  /** The crossings to report now, each once per window. */
  crossings(now: number, rejected: boolean): readonly LimitEventKind[] {
    if (!this.counter && !rejected) return NO_CROSSINGS;
    const used = this.used(now);
    const soft = this.softPercent !== null && used * 100 >= this.softPercent * this.max;
    // The usual settlement: under every mark, nothing to report and nothing allocated.
    if (!soft && !rejected && used < this.max) return NO_CROSSINGS;
    const mark = this.mark(now);
    const out: LimitEventKind[] = [];
    if (soft && this.softMark !== mark) {
      this.softMark = mark;
      out.push('soft_threshold');
    }
    if ((rejected || used >= this.max) && this.hardMark !== mark) {
      this.hardMark = mark;
      out.push('hard_limit');
    }
    return out;
  }
}

/** The token and USD budgets of a key or a user (the fields both have), over their fixed UTC period. */
function budgetMeters(
  owner: MeterOwner,
  limits: UserLimits,
  tokenLimit: LimitName,
  usdLimit: LimitName,
): Meter[] {
  const { budget_window: window, soft_threshold: soft } = limits;
  const meters: Meter[] = [];
  if (limits.token_budget !== null) {
    meters.push(new Meter(tokenLimit, limits.token_budget, new PeriodCounter(window), window, owner, soft));
  }
  if (limits.usd_budget !== null) {
    const max = Math.round(limits.usd_budget * NANOS_PER_USD);
    meters.push(new Meter(usdLimit, max, new PeriodCounter(window), window, owner, soft));
  }
  return meters;
}

export function keyMeters(owner: MeterOwner, limits: KeyLimits): Meter[] {
  const meters: Meter[] = [];
  const minute = () => new RollingCounter(60_000, 1000);
  if (limits.rpm !== null) meters.push(new Meter('rpm', limits.rpm, minute(), '1m', owner, null));
  if (limits.tpm !== null) meters.push(new Meter('tpm', limits.tpm, minute(), '1m', owner, null));
  if (limits.max_parallel !== null)
    meters.push(new Meter('max_parallel', limits.max_parallel, null, '', owner, null));
  meters.push(...budgetMeters(owner, limits, 'token_budget', 'usd_budget'));
  return meters;
}

/** A user's budgets: every request of the user (any key, the web UI) counts. */
export function userMeters(owner: MeterOwner, limits: UserLimits): Meter[] {
  return budgetMeters(owner, limits, 'user_token_budget', 'user_usd_budget');
}

export interface QuotaRuleLimits {
  id: string;
  userId: string;
  model: string;
  maxRequests: number | null;
  maxTotalTokens: number | null;
  windowSeconds: number;
}

export interface QuotaMeters {
  rule: QuotaRuleLimits;
  requests: Meter;
  tokens: Meter;
}

/** Both counters exist even without a max, so GET /api/auth/quota can report current usage. */
export function quotaMeters(rule: QuotaRuleLimits): QuotaMeters {
  const owner: MeterOwner = {
    userId: rule.userId,
    keyId: null,
    keyName: '',
    quotaId: rule.id,
    model: rule.model,
  };
  const window = formatQuotaWindow(rule.windowSeconds);
  const windowMs = rule.windowSeconds * 1000;
  const rolling = (limit: LimitName, max: number | null) =>
    new Meter(
      limit,
      max ?? Number.POSITIVE_INFINITY,
      RollingCounter.forWindow(windowMs),
      window,
      owner,
      null,
    );
  return {
    rule,
    requests: rolling('quota_requests', rule.maxRequests),
    tokens: rolling('quota_tokens', rule.maxTotalTokens),
  };
}
