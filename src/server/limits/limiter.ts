import type { FastifyReply } from 'fastify';
import type { KeyLimits } from '../../shared/limits.ts';
import type { AuthContext } from '../auth/context.ts';
import { AppError } from '../errors.ts';
import type { LimitEventKind, LimitEventSink } from './events.ts';
import {
  type Meter,
  NANOS_PER_USD,
  type QuotaMeters,
  RATE_LIMITS,
  type RequestAmounts,
  type SettledRow,
} from './meter.ts';
import { RateLimitHeaders } from './rate-limit-headers.ts';

/**
 * Admission and settlement (issue #13, decisions.md section 9). Every limit that applies to a
 * request (its key's rpm/tpm/max_parallel/budgets, its user's budgets, its user's quota rules for
 * the model) is a `Meter`. Admission checks and reserves on all of them in one synchronous step, so
 * concurrent requests cannot both take the last unit; settlement replaces the reservation by the
 * real usage. Nothing here touches the database, except a shared budget's lease refill (leases.ts),
 * which happens a few times per period rather than per request.
 */

export interface KeyState {
  limits: KeyLimits;
  meters: Meter[];
}

/** A 429 in the OpenAI shape: `insufficient_quota` for budgets and quotas, else `rate_limit_exceeded`. */
export class LimitExceededError extends AppError {
  constructor(meter: Meter, message: string, retryAfterSeconds: number) {
    const type = RATE_LIMITS.has(meter.limit) ? 'rate_limit_exceeded' : 'insufficient_quota';
    super(429, message, { type, code: type, headers: { 'retry-after': String(retryAfterSeconds) } });
  }
}

/** What one admitted request holds until it settles or is released. */
export class Ticket {
  private released = false;
  private settled = false;
  /** x-ratelimit-* of this request, as of its admission (RateLimitHeaders). */
  headers: RateLimitHeaders | null = null;
  /** Its neighbours in the limiter's list of bounded tickets (BoundedTickets). */
  previous: Ticket | null = null;
  next: Ticket | null = null;

  constructor(
    private readonly limiter: Limiter,
    readonly at: number,
    readonly userId: string,
    readonly keyId: string | null,
    readonly meters: Meter[],
    readonly needs: number[],
    /** Reserved with its prompt's byte count (an upper bound): how to count it exactly, if need be. */
    private exact: ExactAmounts | null,
  ) {}

  /** Frees what was reserved (the request ended, with or without a usage row). Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.exact) {
      this.exact = null;
      this.limiter.bounded.delete(this);
    }
    for (let i = 0; i < this.meters.length; i++) {
      const meter = this.meters[i] as Meter;
      if (meter.limit !== 'rpm') meter.reserved -= this.needs[i] ?? 0;
    }
  }

  /**
   * Lowers a reservation made with the prompt's byte count to its exact count (a limit is close to
   * full: what is in flight must not hold more than it can use). Once; synchronous, as the encoder is
   * loaded by then.
   */
  tighten(): void {
    const amounts = this.exact?.();
    if (!amounts) return;
    this.exact = null;
    this.limiter.bounded.delete(this);
    for (let i = 0; i < this.meters.length; i++) {
      const meter = this.meters[i] as Meter;
      if (meter.unit === 'requests') continue;
      const need = meter.need(amounts);
      const held = this.needs[i] ?? 0;
      if (need < held) {
        meter.reserved -= held - need;
        this.needs[i] = need;
      }
    }
  }

  /** Counts the request's real usage (its usage row), then frees the reservation. Once. */
  settle(row: SettledRow): void {
    this.release();
    if (this.settled) return;
    this.settled = true;
    const now = this.limiter.now();
    // The meters in force now: a limits change meanwhile replaced the ones that were reserved on.
    const key = this.keyId ? this.limiter.keys.get(this.keyId) : undefined;
    if (key) {
      for (const meter of key.meters) {
        if (meter.limit !== 'rpm' && meter.limit !== 'max_parallel') {
          this.limiter.count(meter, this.at, meter.amountOf(row), now);
        }
      }
    }
    const user = this.limiter.users.get(this.userId);
    if (user) for (const meter of user) this.limiter.count(meter, this.at, meter.amountOf(row), now);
    // Quota rules by the model actually served (the usage row's), as GET /api/auth/quota counts.
    const quotas = this.limiter.quotas.get(this.userId);
    if (!quotas) return;
    for (const quota of quotas) {
      if (quota.rule.model !== '' && quota.rule.model !== row.model) continue;
      this.limiter.count(quota.requests, this.at, 1, now);
      this.limiter.count(quota.tokens, this.at, row.total_tokens ?? 0, now);
    }
  }

  /**
   * Sets this request's x-ratelimit-* headers on its answer, over any the upstream sent (an OpenAI
   * upstream's limits are not this key's). Once, as the answer goes out: not at admission too.
   */
  writeHeaders(reply: FastifyReply): void {
    this.headers?.write(reply);
  }
}

/**
 * The tickets in flight that hold a byte-bound reservation, linked through the tickets themselves:
 * every admission adds one and every end removes it, a churn that keeps a Set's hash table growing,
 * shrinking and rehashing; a list allocates nothing.
 */
export class BoundedTickets {
  private head: Ticket | null = null;
  size = 0;

  add(ticket: Ticket): void {
    ticket.previous = null;
    ticket.next = this.head;
    if (this.head) this.head.previous = ticket;
    this.head = ticket;
    this.size += 1;
  }

  delete(ticket: Ticket): void {
    if (ticket.previous) ticket.previous.next = ticket.next;
    else if (this.head === ticket) this.head = ticket.next;
    else return;
    if (ticket.next) ticket.next.previous = ticket.previous;
    ticket.previous = null;
    ticket.next = null;
    this.size -= 1;
  }

  /** Counts every one exactly (each leaves the list as it does). */
  tightenAll(): void {
    let ticket = this.head;
    while (ticket) {
      const next = ticket.next;
      ticket.tighten();
      ticket = next;
    }
  }
}

/**
 * A request's amounts with its prompt counted exactly; null while the encoder is not loaded yet
 * (LimiterOptions.loadCounter loads it).
 */
export type ExactAmounts = () => RequestAmounts | null;

export interface LimiterOptions {
  now: () => number;
  /** Loads the prompt counter (the BPE encoder), for ExactAmounts. */
  loadCounter?: () => Promise<void>;
  events: LimitEventSink;
  /** Counts a rejection of an API key (shown on the dashboard). */
  noteRejected: (keyId: string) => void;
}

export class Limiter {
  readonly keys = new Map<string, KeyState>();
  readonly quotas = new Map<string, QuotaMeters[]>();
  /** Per-user budgets. */
  readonly users = new Map<string, Meter[]>();
  /** Tickets in flight reserved with a prompt's byte count, tightened when a limit gets close. */
  readonly bounded = new BoundedTickets();
  readonly now: () => number;

  constructor(private readonly options: LimiterOptions) {
    this.now = options.now;
  }

  quotasOf(userId: string): QuotaMeters[] {
    return this.quotas.get(userId) ?? [];
  }

  /** The meters a request is checked against; null (the common case) when none applies. */
  metersFor(auth: AuthContext, model: string): Meter[] | null {
    const key = auth.apiKey ? this.keys.get(auth.apiKey.id) : undefined;
    // Quota rules never restrict admins (the reference's RequireQuota), legacy keys included.
    const rules = auth.role === 'admin' ? undefined : this.quotas.get(auth.user.id);
    const user = this.users.get(auth.user.id);
    if (!key && !rules && !user) return null;
    // The key's own array when nothing adds to it (reserve does not change it): no copy per request.
    if (key && !rules && !user) return key.meters.length > 0 ? key.meters : null;
    const meters: Meter[] = key ? [...key.meters] : [];
    if (user) meters.push(...user);
    for (const quota of rules ?? []) {
      if (quota.rule.model !== '' && quota.rule.model !== model) continue;
      if (quota.rule.maxRequests !== null) meters.push(quota.requests);
      if (quota.rule.maxTotalTokens !== null) meters.push(quota.tokens);
    }
    return meters.length > 0 ? meters : null;
  }

  /**
   * Reserves 1 request, the tokens and the cost on every meter, or throws LimitExceededError. Synchronous; a
   * shared budget whose local slice is short returns a promise that refills it and tries again.
   * Either way the check and the reservation happen in one synchronous step.
   *
   * `exact`: `amounts` bound the prompt by its bytes (no tokenizer on the request path while every
   * limit has room). When a token or cost limit does not fit, the request and every bounded one in
   * flight are counted exactly, and the check runs again, so a limit close to full admits exactly
   * what an exact count would.
   */
  reserve(
    meters: Meter[],
    userId: string,
    keyId: string | null,
    amounts: RequestAmounts,
    reply: FastifyReply,
    exact?: ExactAmounts,
  ): Ticket | Promise<Ticket> {
    const now = this.now();
    const needs: number[] = [];
    for (let i = 0; i < meters.length; i++) needs.push((meters[i] as Meter).need(amounts));
    let refills: Promise<void>[] | null = null;
    for (let i = 0; i < meters.length; i++) {
      const meter = meters[i] as Meter;
      const need = needs[i] ?? 0;
      if (meter.unit === 'nanos' && amounts.nanos === null) {
        this.setHeaders(meters, now, reply);
        throw this.rejectUnpriced(meter, now);
      }
      if (meter.fits(now, need)) continue;
      // A shared budget whose local slice is short takes another from the database, then tries
      // again; it refuses once the database has nothing left.
      if (meter.lease && need <= meter.max && meter.lease.mayRefill(now)) {
        refills ??= [];
        refills.push(meter.lease.refill(now, meter.reserved, need));
        continue;
      }
      // Reserved with the prompt's byte count: counted exactly (with those in flight), checked again.
      if (exact && meter.unit !== 'requests')
        return this.reserveExactly(meters, userId, keyId, amounts, reply, exact);
      // A slice too small for this request is of no use here: it goes back at once, so the last of
      // a budget split across instances is not stranded in pieces none of them can spend.
      meter.lease?.giveBack(meter.reserved).catch(() => {});
      this.setHeaders(meters, now, reply);
      throw this.reject(meter, need, now);
    }
    if (refills)
      return Promise.all(refills).then(() => this.reserve(meters, userId, keyId, amounts, reply, exact));
    const ticket = new Ticket(this, now, userId, keyId, meters, needs, exact ?? null);
    if (exact) this.bounded.add(ticket);
    for (let i = 0; i < meters.length; i++) {
      const meter = meters[i] as Meter;
      // A request counts against rpm when it is admitted, whatever becomes of it.
      if (meter.limit === 'rpm') meter.counter?.add(now, 1);
      else meter.reserved += needs[i] ?? 0;
    }
    // Set as the answer goes out (Ticket.writeHeaders), with the room left as of now.
    ticket.headers = RateLimitHeaders.of(meters, now);
    return ticket;
  }

  /** reserve() again with the request, and every bounded one in flight, counted exactly. */
  private reserveExactly(
    meters: Meter[],
    userId: string,
    keyId: string | null,
    bound: RequestAmounts,
    reply: FastifyReply,
    exact: ExactAmounts,
  ): Ticket | Promise<Ticket> {
    const amounts = exact();
    if (!amounts) {
      const { loadCounter } = this.options;
      const byBound = () => this.reserve(meters, userId, keyId, bound, reply);
      // The encoder loads once (~0.5 s); should it fail, the byte bound decides.
      if (!loadCounter) return byBound();
      return loadCounter().then(
        () => (exact() ? this.reserveExactly(meters, userId, keyId, bound, reply, exact) : byBound()),
        byBound,
      );
    }
    this.bounded.tightenAll();
    return this.reserve(meters, userId, keyId, amounts, reply);
  }

  /** Adds settled usage to a meter and reports the crossings it causes. */
  count(meter: Meter, at: number, amount: number, now: number): void {
    meter.counter?.add(at, amount);
    meter.lease?.spend(at, amount);
    for (const kind of meter.crossings(now, false)) this.emit(kind, meter, now);
  }

  private reject(meter: Meter, need: number, now: number): LimitExceededError {
    const retryAt = meter.retryAt(now, need);
    const retryAfter = Number.isFinite(retryAt) ? Math.max(1, Math.ceil((retryAt - now) / 1000)) : 60;
    if (meter.owner.keyId) this.options.noteRejected(meter.owner.keyId);
    this.emit('rejected', meter, now);
    for (const kind of meter.crossings(now, true)) this.emit(kind, meter, now);
    return new LimitExceededError(meter, this.describe(meter, need, now, retryAfter), retryAfter);
  }

  /** The model of the request being admitted, for the message of an unpriced one. */
  private admitting = '';

  /** Notes the model of the request about to be reserved (its name goes into messages). */
  admittingModel(model: string): void {
    this.admitting = model;
  }

  /**
   * A USD budget cannot be checked for a model without a price: refused rather than let through
   * uncounted (an administrator adds a price, 0 for a free local model).
   */
  private rejectUnpriced(meter: Meter, now: number): LimitExceededError {
    if (meter.owner.keyId) this.options.noteRejected(meter.owner.keyId);
    this.emit('rejected', meter, now);
    const whose = meter.owner.keyId ? `API key "${meter.owner.keyName}"` : 'your account';
    return new LimitExceededError(
      meter,
      `No price is known for the model "${this.admitting}", so the USD budget of ${whose} (${meter.limit}) cannot be checked; an administrator can add a price for it (0 for a free model).`,
      3600,
    );
  }

  private describe(meter: Meter, need: number, now: number, retryAfter: number): string {
    const used = Math.round(meter.lease ? meter.lease.spent : meter.used(now));
    const key = `API key "${meter.owner.keyName}"`;
    const usd = (nanos: number) => `$${(nanos / NANOS_PER_USD).toFixed(6)}`;
    const later = `Try again in ${retryAfter}s.`;
    switch (meter.limit) {
      case 'rpm':
        return `Rate limit reached for ${key} on requests per minute (rpm): limit ${meter.max}, used ${used}. ${later}`;
      case 'tpm':
        return `Rate limit reached for ${key} on tokens per minute (tpm): limit ${meter.max}, used ${used}, requested ${need}. ${later}`;
      case 'max_parallel':
        return `Rate limit reached for ${key} on parallel requests (max_parallel): limit ${meter.max}, in flight ${meter.reserved}. ${later}`;
      case 'token_budget':
        return `Token budget of ${key} exceeded (token_budget): ${used} of ${meter.max} tokens used in this ${meter.window} window, this request needs ${need} (prompt estimate + max_tokens). ${later}`;
      case 'usd_budget':
        return `USD budget of ${key} exceeded (usd_budget): ${usd(used)} of ${usd(meter.max)} used in this ${meter.window} window, this request may cost ${usd(need)}. ${later}`;
      case 'user_token_budget':
        return `Your token budget is exceeded (user_token_budget): ${used} of ${meter.max} tokens used in this ${meter.window} window, this request needs ${need}. ${later}`;
      case 'user_usd_budget':
        return `Your USD budget is exceeded (user_usd_budget): ${usd(used)} of ${usd(meter.max)} used in this ${meter.window} window, this request may cost ${usd(need)}. ${later}`;
      case 'quota_requests':
      case 'quota_tokens': {
        const scope = meter.owner.model === '' ? 'all models' : `model ${meter.owner.model}`;
        const what = meter.limit === 'quota_requests' ? 'Request' : 'Token';
        const unit = meter.limit === 'quota_requests' ? 'requests' : 'tokens';
        return `${what} quota exceeded for ${scope}: ${used}/${meter.max} ${unit} in ${meter.window} window. ${later}`;
      }
    }
  }

  private emit(kind: LimitEventKind, meter: Meter, now: number): void {
    this.options.events.emit({
      kind,
      limit: meter.limit,
      used: Math.round(meter.used(now)),
      max: meter.max,
      window: meter.window,
      user_id: meter.owner.userId,
      api_key_id: meter.owner.keyId,
      quota_id: meter.owner.quotaId,
      at: new Date(now).toISOString(),
    });
  }

  /** A refused request's answer carries the headers too. */
  private setHeaders(meters: Meter[], now: number, reply: FastifyReply): void {
    RateLimitHeaders.of(meters, now)?.write(reply);
  }
}
