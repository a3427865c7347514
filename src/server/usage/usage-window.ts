import type { UsageGranularity, UsagePeriod, UsageQuery, UsageWindow } from '../../shared/usage.ts';
import { USAGE_PERIODS } from '../../shared/usage.ts';
import { assertNever, hourStart } from '../db/dialect.ts';
import { BadRequestError } from '../errors.ts';
import type { TimeRange } from './usage.repository.ts';

/** A usage query's counted range and bucket size: periods, from/to, and whole buckets. */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Rolling windows of reference 8.1 and the bucket size each implies. */
const PERIODS: Record<UsagePeriod, { lengthMs: number | null; granularity: UsageGranularity }> = {
  day: { lengthMs: DAY_MS, granularity: 'hour' },
  week: { lengthMs: 7 * DAY_MS, granularity: 'day' },
  month: { lengthMs: 30 * DAY_MS, granularity: 'day' },
  all: { lengthMs: null, granularity: 'month' },
};

// A from/to range gets LocalAI's bucket sizes by length: up to two days in hours (a `day` period is
// 24-25 buckets), up to ~three months in days (`month` is 30-31), longer in months.
const HOURLY_UP_TO_MS = 2 * DAY_MS;
const DAILY_UP_TO_MS = 92 * DAY_MS;

/** Start of the bucket containing `ms` (UTC). */
export function floorToUnit(ms: number, unit: UsageGranularity): number {
  switch (unit) {
    case 'hour':
      return hourStart(ms);
    case 'day':
      return ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
    case 'month': {
      const date = new Date(ms);
      return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
    }
    default:
      return assertNever(unit);
  }
}

/** End of the bucket containing `ms - 1`, i.e. `ms` itself when it is a bucket boundary. */
export function ceilToUnit(ms: number, unit: UsageGranularity): number {
  const floor = floorToUnit(ms, unit);
  if (floor === ms) return ms;
  switch (unit) {
    case 'hour':
      return floor + HOUR_MS;
    case 'day':
      return floor + DAY_MS;
    case 'month': {
      const date = new Date(floor);
      return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
    }
    default:
      return assertNever(unit);
  }
}

export interface ResolvedWindow {
  range: TimeRange;
  granularity: UsageGranularity;
  window: UsageWindow;
}

/** Reference 8.1: an empty or unknown period means month. */
export function normalisePeriod(period: string | undefined): UsagePeriod {
  return (USAGE_PERIODS as readonly string[]).includes(period ?? '') ? (period as UsagePeriod) : 'month';
}

function parseTimestamp(value: string): number {
  return Date.parse(value.replace(' ', 'T'));
}

/**
 * The counted range of a query, widened to whole buckets (shared/usage.ts explains why): the start
 * is floored to its bucket, an explicit `to` (exclusive) is ceiled to its bucket's end.
 */
export function resolveWindow(query: UsageQuery, now: number): ResolvedWindow {
  let start: number | null;
  let end: number | null = null;
  let granularity: UsageGranularity;
  if (query.from !== undefined || query.to !== undefined) {
    const from = query.from === undefined ? null : parseTimestamp(query.from);
    const to = query.to === undefined ? null : parseTimestamp(query.to);
    if (from !== null && to !== null && to <= from) throw new BadRequestError('to: must be after from');
    const length = from === null ? Number.POSITIVE_INFINITY : (to ?? now) - from;
    granularity =
      query.granularity ?? (length <= HOURLY_UP_TO_MS ? 'hour' : length <= DAILY_UP_TO_MS ? 'day' : 'month');
    start = from === null ? null : floorToUnit(from, granularity);
    end = to === null ? null : ceilToUnit(to, granularity);
  } else {
    const period = PERIODS[normalisePeriod(query.period)];
    granularity = query.granularity ?? period.granularity;
    start = period.lengthMs === null ? null : floorToUnit(now - period.lengthMs, granularity);
  }
  return {
    range: { start, end },
    granularity,
    window: {
      from: start === null ? null : new Date(start).toISOString(),
      to: end === null ? null : new Date(end).toISOString(),
      granularity,
    },
  };
}
