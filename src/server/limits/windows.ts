import type { BudgetWindow } from '../../shared/limits.ts';

/**
 * Window arithmetic. Quota rules keep LocalAI's rolling windows and window syntax
 * (localai-reference-control.md section 1.2); key budgets use fixed UTC periods, so each budget has
 * one reset time a user can plan with (the dashboard's "resets at").
 */

const FIXED_TOKENS: Record<string, number> = {
  '1m': 60,
  '5m': 300,
  '1h': 3600,
  '6h': 21_600,
  '1d': 86_400,
  '7d': 604_800,
  '30d': 2_592_000,
};

const GO_UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * LocalAI's ParseWindowDuration: the seven tokens, else a Go duration (`90m`, `1h30m`, `1.5h`)
 * truncated to whole seconds. Unlike LocalAI, windows under one second (and negative ones) are
 * refused (fix list, section 6 item 1): null when the text is not a usable window.
 */
export function parseQuotaWindow(text: string): number | null {
  const fixed = FIXED_TOKENS[text];
  if (fixed !== undefined) return fixed;
  const match = /^[+]?((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(text);
  if (!match) return null;
  let ns = 0;
  for (const part of text.replace(/^\+/, '').matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    ns += Number(part[1]) * (GO_UNIT_NS[part[2] ?? ''] ?? Number.NaN);
  }
  const seconds = Math.floor(ns / 1e9);
  return Number.isFinite(seconds) && seconds >= 1 ? seconds : null;
}

/** LocalAI's formatWindowDuration: a token when there is one, else Go's `2h0m0s` form. */
export function formatQuotaWindow(seconds: number): string {
  for (const [token, value] of Object.entries(FIXED_TOKENS)) if (value === seconds) return token;
  return goDuration(seconds * 1000);
}

/** Go's Duration.String() for whole milliseconds: `1.5s`, `6m0s`, `2h0m0s`, `250ms`. */
export function goDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const secondsMs = ms % 60_000;
  const seconds =
    secondsMs % 1000 === 0 ? String(secondsMs / 1000) : (secondsMs / 1000).toFixed(3).replace(/0+$/, '');
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The fixed UTC period of a budget window holding `at`: `1h` the clock hour, `1d` the UTC day, `7d`
 * the ISO week (from Monday), `30d` consecutive 30-day periods counted from the Unix epoch, `month`
 * the calendar month. Every boundary is a whole UTC hour, so the hourly rollups sum a window exactly.
 */
export function budgetPeriod(window: BudgetWindow, at: number): { start: number; end: number } {
  switch (window) {
    case '1h': {
      const start = at - (at % HOUR);
      return { start, end: start + HOUR };
    }
    case '1d': {
      const start = at - (at % DAY);
      return { start, end: start + DAY };
    }
    case '7d': {
      const day = at - (at % DAY);
      // 1970-01-01 was a Thursday: days since the epoch + 3, modulo 7, is days since Monday.
      const start = day - ((Math.floor(day / DAY) + 3) % 7) * DAY;
      return { start, end: start + 7 * DAY };
    }
    case '30d': {
      const start = at - (at % (30 * DAY));
      return { start, end: start + 30 * DAY };
    }
    case 'month': {
      const date = new Date(at);
      const start = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
      const end = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
      return { start, end };
    }
  }
}
