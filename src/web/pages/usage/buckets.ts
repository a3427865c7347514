import type { UsageRange } from '../../api.ts';

/**
 * Bucket labels are UTC strings from the server: `YYYY-MM-DD HH:00` (hour), `YYYY-MM-DD` (day) or
 * `YYYY-MM` (month). The server returns sparse buckets; charts fill the gaps with zeros so time
 * reads left to right at a constant pace.
 */
export type Unit = 'hour' | 'day' | 'month';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export function unitOfLabel(label: string): Unit {
  if (label.length > 10) return 'hour';
  if (label.length === 10) return 'day';
  return 'month';
}

export function unitOfRange(range: UsageRange, labels: string[]): Unit {
  const first = labels[0];
  if (first) return unitOfLabel(first);
  if (range.from && range.to) {
    const span = Date.parse(range.to) - Date.parse(range.from);
    if (span <= 2 * DAY) return 'hour';
    return span <= 366 * DAY ? 'day' : 'month';
  }
  if (range.period === 'day') return 'hour';
  return range.period === 'all' ? 'month' : 'day';
}

export function labelOf(ms: number, unit: Unit): string {
  const iso = new Date(ms).toISOString();
  if (unit === 'hour') return `${iso.slice(0, 10)} ${iso.slice(11, 13)}:00`;
  return unit === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

export function startOfLabel(label: string): number {
  const unit = unitOfLabel(label);
  if (unit === 'hour') return Date.parse(`${label.slice(0, 10)}T${label.slice(11, 13)}:00:00Z`);
  if (unit === 'day') return Date.parse(`${label}T00:00:00Z`);
  return Date.parse(`${label}-01T00:00:00Z`);
}

export function nextStart(ms: number, unit: Unit): number {
  if (unit === 'hour') return ms + HOUR;
  if (unit === 'day') return ms + DAY;
  const date = new Date(ms);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}

/** Every label from `fromMs` to `toMs` inclusive (capped so a huge custom range stays drawable). */
export function labelsBetween(fromMs: number, toMs: number, unit: Unit, cap = 400): string[] {
  const labels: string[] = [];
  let at = startOfLabel(labelOf(fromMs, unit));
  while (at <= toMs && labels.length < cap) {
    labels.push(labelOf(at, unit));
    at = nextStart(at, unit);
  }
  return labels;
}

/**
 * The window the range covers, for zero-filling: rolling windows end now. `served` is the window the
 * server says it counted (it floors the start to whole buckets), which wins when present.
 */
export function windowOf(
  range: UsageRange,
  labels: string[],
  now = Date.now(),
  served?: { from: string | null; to: string | null },
): [number, number] {
  if (served?.from) {
    const end = served.to ? Math.min(Date.parse(served.to) - 1, now) : now;
    return [Date.parse(served.from), end];
  }
  if (range.from && range.to) return [Date.parse(range.from), Math.min(Date.parse(range.to) - 1, now)];
  switch (range.period) {
    case 'day':
      return [now - DAY + HOUR, now];
    case 'week':
      return [now - 6 * DAY, now];
    case 'month':
      return [now - 29 * DAY, now];
    case 'all': {
      const first = labels[0];
      return [first ? startOfLabel(first) : now, now];
    }
  }
}

/** Full label axis for the range, including any label the server sent outside the computed window. */
export function axisLabels(
  range: UsageRange,
  labels: string[],
  now = Date.now(),
  served?: { from: string | null; to: string | null },
): string[] {
  const sorted = [...new Set(labels)].sort();
  const unit = unitOfRange(range, sorted);
  const [from, to] = windowOf(range, sorted, now, served);
  const filled = new Set(labelsBetween(from, to, unit));
  for (const label of sorted) filled.add(label);
  return [...filled].sort();
}

/** What the cards' change compares with: the previous window of the same length. */
export function compareLabel(range: UsageRange): string {
  if (range.from && range.to) return 'vs previous period';
  switch (range.period) {
    case 'day':
      return 'vs previous 24 h';
    case 'week':
      return 'vs previous week';
    case 'month':
      return 'vs previous 30 days';
    case 'all':
      return '';
  }
}

/** How far ahead the projection looks, in buckets, and how that horizon is named. */
export function projectionHorizon(range: UsageRange): { buckets: number; label: string } | null {
  if (range.from && range.to) return null;
  switch (range.period) {
    case 'day':
      return { buckets: 24, label: 'next 24 hours' };
    case 'week':
      return { buckets: 7, label: 'next 7 days' };
    case 'month':
      return { buckets: 30, label: 'next 30 days' };
    case 'all':
      return range.granularity === 'day'
        ? { buckets: 91, label: 'next 3 months' }
        : { buckets: 3, label: 'next 3 months' };
  }
}

/** Least-squares line through (index, value); null with fewer than two non-empty points. */
export function linearFit(values: number[]): { slope: number; intercept: number } | null {
  if (values.filter((value) => value > 0).length < 2) return null;
  const n = values.length;
  const meanX = (n - 1) / 2;
  const meanY = values.reduce((sum, value) => sum + value, 0) / n;
  let numerator = 0;
  let denominator = 0;
  values.forEach((value, index) => {
    numerator += (index - meanX) * (value - meanY);
    denominator += (index - meanX) ** 2;
  });
  const slope = denominator === 0 ? 0 : numerator / denominator;
  return { slope, intercept: meanY - slope * meanX };
}

export function project(values: number[], ahead: number): number[] | null {
  const fit = linearFit(values);
  if (!fit) return null;
  return Array.from({ length: ahead }, (_, i) =>
    Math.max(0, fit.intercept + fit.slope * (values.length + i)),
  );
}
