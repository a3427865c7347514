import { sql } from 'kysely';
import type { Db } from '../db/connection.ts';
import type { PeriodCounter } from './meters.ts';

/**
 * Budgets shared by several instances (PostgreSQL). The database row `limit_leases(meter)` holds how
 * much of the current period's budget instances have taken. An instance takes a slice with one
 * UPDATE … RETURNING (the row lock serialises concurrent takers, and each SET expression reads the
 * row it updates, so two instances can never both take the last tokens), spends it locally without
 * a round trip, and gives back what it did not use when it goes idle or shuts down.
 *
 * Bound: the sum of every instance's reservations never exceeds the budget. Real usage can pass it
 * only by what requests use beyond their reservation (a prompt the estimator under-counted); that
 * excess is charged to the row at once. An instance killed with -9 loses its unspent slice until the
 * period ends (under-admission, at most one slice per killed instance).
 */
export interface LeaseStore {
  /** Takes up to `want` for period `start`; resolves with what was granted (0 when none is left). */
  take(meter: string, start: number, max: number, want: number): Promise<number>;
  /** Charges usage beyond what was granted (settlement above the reservation). */
  charge(meter: string, start: number, amount: number): Promise<void>;
  /** Returns an unused part. */
  giveBack(meter: string, start: number, amount: number): Promise<void>;
  /** Creates the row, or re-bases a row of an older period on `used` (the rollups' sum). */
  init(meter: string, start: number, used: number): Promise<void>;
}

export function createLeaseStore(db: Db): LeaseStore {
  const k = db.kysely;
  return {
    async take(meter, start, max, want) {
      // granted of this period (0 when the row still holds an older one), then what fits.
      const current = sql<number>`(case when window_start = ${start} then granted else 0 end)`;
      const room = sql<number>`(case when ${max} - ${current} < 0 then 0 else ${max} - ${current} end)`;
      const taken = sql<number>`(case when ${want} < ${room} then ${want} else ${room} end)`;
      const result = await sql<{ last_take: number | string }>`
        update limit_leases
        set granted = ${current} + ${taken}, last_take = ${taken}, window_start = ${start}
        where meter = ${meter}
        returning last_take`.execute(k);
      return Number(result.rows[0]?.last_take ?? 0);
    },
    async charge(meter, start, amount) {
      await k
        .updateTable('limit_leases')
        .set((eb) => ({ granted: eb('granted', '+', amount) }))
        .where('meter', '=', meter)
        .where('window_start', '=', start)
        .execute();
    },
    async giveBack(meter, start, amount) {
      await k
        .updateTable('limit_leases')
        .set((eb) => ({ granted: eb('granted', '-', amount) }))
        .where('meter', '=', meter)
        .where('window_start', '=', start)
        .execute();
    },
    async init(meter, start, used) {
      await k
        .insertInto('limit_leases')
        .values({ meter, window_start: start, granted: used, last_take: 0 })
        .onConflict((oc) =>
          oc
            .column('meter')
            .doUpdateSet({ window_start: start, granted: used })
            .where('limit_leases.window_start', '<>', start),
        )
        .execute();
    },
  };
}

const EMPTY_RECHECK_MS = 1000;

/** This instance's slice of one shared budget. */
export class LeasedAllowance {
  granted = 0;
  spent = 0;
  private start = -1;
  private refilling: Promise<void> | null = null;
  /** Until when the database is known to have nothing left for this period. */
  private emptyUntil = 0;
  lastActive = 0;

  constructor(
    readonly meter: string,
    private readonly counter: PeriodCounter,
    private readonly max: () => number,
    private readonly store: LeaseStore,
    private readonly onError: (error: unknown) => void,
  ) {}

  private roll(now: number): number {
    const start = this.counter.periodStart(now);
    if (start !== this.start) {
      this.start = start;
      this.granted = 0;
      this.spent = 0;
      this.emptyUntil = 0;
    }
    return start;
  }

  /**
   * False while the database is known to be spent: a flood of rejected requests asks it at most
   * once a second (another instance may give a slice back meanwhile).
   */
  mayRefill(now: number): boolean {
    this.roll(now);
    return this.refilling !== null || now >= this.emptyUntil;
  }

  fits(now: number, reserved: number, need: number): boolean {
    this.roll(now);
    this.lastActive = now;
    return this.spent + reserved + need <= this.granted;
  }

  /**
   * Takes what `need` lacks plus a slice (1/8 of the budget, so a busy instance goes to the
   * database about 8 times per period, not per request). Concurrent callers share one take.
   */
  refill(now: number, reserved: number, need: number): Promise<void> {
    if (this.refilling) return this.refilling;
    const start = this.roll(now);
    const lacking = this.spent + reserved + need - this.granted;
    const want = Math.max(lacking, Math.ceil(this.max() / 8));
    this.refilling = this.store
      .take(this.meter, start, this.max(), want)
      .then((taken) => {
        if (this.start !== start) return;
        this.granted += taken;
        if (taken < want) this.emptyUntil = now + EMPTY_RECHECK_MS;
      })
      .finally(() => {
        this.refilling = null;
      });
    return this.refilling;
  }

  spend(at: number, amount: number): void {
    if (at < this.start) return;
    this.spent += amount;
    if (this.spent > this.granted) {
      const excess = this.spent - this.granted;
      this.granted = this.spent;
      this.store.charge(this.meter, this.start, excess).catch(this.onError);
    }
  }

  /** Gives back what is neither spent nor reserved. */
  async giveBack(reserved: number): Promise<void> {
    const unused = this.granted - this.spent - reserved;
    if (unused <= 0 || this.start < 0) return;
    this.granted -= unused;
    await this.store.giveBack(this.meter, this.start, unused);
  }
}
