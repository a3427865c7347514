/** Number and time formatting shared by every page. */

export function formatTokens(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1_000_000_000) return `${trim(value / 1_000_000_000)}B`;
  if (abs >= 1_000_000) return `${trim(value / 1_000_000)}M`;
  if (abs >= 1_000) return `${trim(value / 1_000)}K`;
  return String(Math.round(value));
}

// One decimal below 100 units, none above, and never dropped: `6.0M` next to `4.9M` reads as the
// same precision (`6M` beside `4.9M` looked rounded differently).
function trim(value: number): string {
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** An axis tick: `1.5M`, `500K`, `0`; round ticks need no forced decimal. */
export function formatTick(value: number): string {
  return formatTokens(value).replace(/\.0(?=[KMB]$)/, '');
}

/**
 * Change against the previous period: `+12%`, `−5%`, `new` (nothing before), or null when there is
 * nothing to compare (no previous period, or nothing in either).
 */
export function formatChange(current: number, previous: number | null | undefined): string | null {
  if (previous === null || previous === undefined) return null;
  if (previous === 0) return current > 0 ? 'new' : null;
  const change = ((current - previous) / previous) * 100;
  const rounded = Math.abs(change) < 10 ? Math.round(change * 10) / 10 : Math.round(change);
  if (rounded === 0) return '±0%';
  return `${rounded > 0 ? '+' : '−'}${Math.abs(rounded)}%`;
}

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** "just now", "5m ago", "3h ago", "2d ago"; "—" for missing or zero times (Go's zero time too). */
export function formatRelative(value: string | null | undefined, now = Date.now()): string {
  if (!value) return '—';
  const at = Date.parse(value);
  if (!Number.isFinite(at) || at <= 0 || value.startsWith('0001-')) return '—';
  const seconds = Math.max(0, (now - at) / 1000);
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return '—';
  const at = Date.parse(value);
  if (!Number.isFinite(at)) return '—';
  return new Date(at).toLocaleDateString('en-US', { year: 'numeric', month: 'short', day: 'numeric' });
}

export function formatDateTime(value: string | null | undefined): string {
  if (!value) return '—';
  const at = Date.parse(value);
  if (!Number.isFinite(at)) return '—';
  return new Date(at).toLocaleString('en-US', {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

export function percent(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 100) : 0;
}

/**
 * Whole percentages that add up to exactly 100 (largest remainder): three shares of 33.3% read as
 * 34/33/33, not 33/33/33.
 */
export function percentages(parts: readonly number[]): number[] {
  const whole = parts.reduce((sum, part) => sum + part, 0);
  if (whole <= 0) return parts.map(() => 0);
  const exact = parts.map((part) => (part / whole) * 100);
  const floors = exact.map(Math.floor);
  let missing = 100 - floors.reduce((sum, value) => sum + value, 0);
  const byRemainder = exact.map((value, index) => ({ index, rest: value - Math.floor(value) }));
  byRemainder.sort((a, b) => b.rest - a.rest || a.index - b.index);
  for (const { index } of byRemainder) {
    if (missing <= 0) break;
    floors[index] = (floors[index] ?? 0) + 1;
    missing--;
  }
  return floors;
}

/** What the Usage page measures: tokens, or cost in USD. */
export type Measure = 'tokens' | 'cost';

/**
 * USD as a price list shows it: `$12.34` (cents from a dollar up), `$0.0042` (two significant
 * digits below a dollar, so small per-request costs do not all read `$0.00`), `$0` for nothing.
 */
export function formatUsd(value: number): string {
  if (value === 0) return '$0';
  const sign = value < 0 ? '-' : '';
  const abs = Math.abs(value);
  if (abs >= 1) {
    return `${sign}$${abs.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  }
  const decimals = Math.min(9, Math.max(2, 1 - Math.floor(Math.log10(abs))));
  return `${sign}$${abs.toFixed(decimals)}`;
}

/** A figure in the page's measure: tokens (`1.2K`) or USD. */
export function formatMeasure(measure: Measure, value: number): string {
  return measure === 'cost' ? formatUsd(value) : formatTokens(value);
}

/** Sums USD figures through integer nano-USD, so a column adds up exactly as the server's totals do. */
export function sumUsd(values: readonly number[]): number {
  let nanos = 0;
  for (const value of values) nanos += Math.round(value * 1e9);
  return nanos / 1e9;
}
