import type { BudgetWindow } from '../../shared/limits.ts';
import { budgetPeriod } from './windows.ts';

/**
 * Counters behind each limit, all synchronous and allocation-free on the hot path.
 * - `RollingCounter`: a sliding window cut into buckets (rpm/tpm: 60 one-second buckets; quota
 *   rules: up to 120 buckets of window/120). What a bucket holds leaves the window all at once, so
 *   the window is between (n-1) and n buckets long: for rpm, the last 59-60 seconds.
 * - `PeriodCounter`: a fixed UTC period (key budgets), reset when the period ends.
 */
export interface UsageCounter {
  add(at: number, amount: number): void;
  total(now: number): number;
  /** When at least `amount` of what is counted now will have left the window (Infinity: never). */
  freesAt(now: number, amount: number): number;
  /** When everything counted now will have left the window (`now` when nothing is counted). */
  clearsAt(now: number): number;
}

export class RollingCounter implements UsageCounter {
  private readonly n: number;
  private readonly ids: Float64Array;
  private readonly amounts: Float64Array;
  /** The newest bucket the window has advanced to, and the sum of the buckets in it. */
  private head = Number.NEGATIVE_INFINITY;
  private sum = 0;
  /** The newest bucket anything was added to: when it leaves, the window is empty. */
  private last = Number.NEGATIVE_INFINITY;

  constructor(
    readonly windowMs: number,
    readonly bucketMs: number,
  ) {
    this.n = Math.max(1, Math.ceil(windowMs / bucketMs));
    this.ids = new Float64Array(this.n).fill(-1);
    this.amounts = new Float64Array(this.n);
  }

  static forWindow(windowMs: number): RollingCounter {
    return new RollingCounter(windowMs, Math.max(1000, Math.ceil(windowMs / 120 / 1000) * 1000));
  }

  /** Moves the window to end at bucket `newest`, dropping what left it: O(1) per bucket passed. */
  private advance(newest: number): void {
    if (newest <= this.head) return;
    if (newest - this.head >= this.n) {
      this.ids.fill(-1);
      this.amounts.fill(0);
      this.sum = 0;
    } else {
      for (let id = this.head + 1; id <= newest; id++) {
        const slot = id % this.n;
        const held = this.ids[slot] ?? -1;
        if (held !== -1 && held <= newest - this.n) {
          this.sum -= this.amounts[slot] ?? 0;
          this.ids[slot] = -1;
          this.amounts[slot] = 0;
        }
      }
    }
    this.head = newest;
  }

  private slotFor(id: number): number {
    if (id > this.head) this.advance(id);
    if (id <= this.head - this.n) return -1; // older than the window
    const slot = id % this.n;
    if (this.ids[slot] !== id) {
      this.sum -= this.amounts[slot] ?? 0;
      this.ids[slot] = id;
      this.amounts[slot] = 0;
    }
    if (id > this.last) this.last = id;
    return slot;
  }

  add(at: number, amount: number): void {
    const slot = this.slotFor(Math.floor(at / this.bucketMs));
    if (slot === -1) return;
    this.amounts[slot] = (this.amounts[slot] ?? 0) + amount;
    this.sum += amount;
  }

  /**
   * Raises a bucket to `amount` if it holds less: merges what the database counted (every
   * instance's flushed rows) into this instance's own count without counting a row twice.
   */
  raise(at: number, amount: number): void {
    const slot = this.slotFor(Math.floor(at / this.bucketMs));
    if (slot === -1) return;
    const held = this.amounts[slot] ?? 0;
    if (held < amount) {
      this.amounts[slot] = amount;
      this.sum += amount - held;
    }
  }

  total(now: number): number {
    this.advance(Math.floor(now / this.bucketMs));
    return this.sum;
  }

  freesAt(now: number, amount: number): number {
    if (amount <= 0) return now;
    const newest = Math.floor(now / this.bucketMs);
    this.advance(newest);
    let freed = 0;
    for (let id = newest - this.n + 1; id <= newest; id++) {
      const slot = ((id % this.n) + this.n) % this.n;
      if (this.ids[slot] === id) freed += this.amounts[slot] ?? 0;
      if (freed >= amount) return (id + this.n) * this.bucketMs;
    }
    return Number.POSITIVE_INFINITY;
  }

  clearsAt(now: number): number {
    const newest = Math.floor(now / this.bucketMs);
    return this.last > newest - this.n && this.last <= newest ? (this.last + this.n) * this.bucketMs : now;
  }
}

export class PeriodCounter implements UsageCounter {
  private start = 0;
  private end = 0;
  private used = 0;

  constructor(readonly window: BudgetWindow) {}

  /** The start of the period holding `now` (rolled over when the previous one ended). */
  periodStart(now: number): number {
    this.roll(now);
    return this.start;
  }

  /** Rolls over to the period holding `now`; allocates nothing (it runs on every request). */
  private roll(now: number): void {
    if (now < this.end && now >= this.start) return;
    const next = budgetPeriod(this.window, now);
    if (next.start !== this.start) this.used = 0;
    this.start = next.start;
    this.end = next.end;
  }

  add(at: number, amount: number): void {
    // A request admitted in the previous period and settled in this one belongs to the previous one.
    if (at < this.start) return;
    this.roll(at);
    if (at >= this.start && at < this.end) this.used += amount;
  }

  total(now: number): number {
    this.roll(now);
    return this.used;
  }

  freesAt(now: number, amount: number): number {
    if (amount <= 0) return now;
    this.roll(now);
    return this.end;
  }

  clearsAt(now: number): number {
    return this.total(now) > 0 ? this.end : now;
  }
}
