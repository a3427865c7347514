import { describe, expect, it } from 'vitest';
import { PeriodCounter, RollingCounter } from './meters.ts';
import { budgetPeriod, formatQuotaWindow, goDuration, parseQuotaWindow } from './windows.ts';

describe('quota windows (LocalAI syntax, section 1.2, with the sub-second fix)', () => {
  it.each([
    ['1m', 60],
    ['5m', 300],
    ['30d', 2_592_000],
    ['24h', 86_400],
    ['90m', 5400],
    ['1h30m', 5400],
    ['1.5h', 5400],
    ['2h0m0s', 7200],
    ['1500ms', 1],
  ])('%s is %i seconds', (text, seconds) => {
    expect(parseQuotaWindow(text)).toBe(seconds);
  });

  it.each(['2d', '14d', '1w', '1y', '', 'h', '500ms', '0s', '-1h', '1h ', 'abc'])('refuses %j', (text) => {
    expect(parseQuotaWindow(text)).toBeNull();
  });

  it('formats the seven tokens as tokens and anything else as Go does', () => {
    expect(formatQuotaWindow(86_400)).toBe('1d');
    expect(formatQuotaWindow(7200)).toBe('2h0m0s');
    expect(formatQuotaWindow(172_800)).toBe('48h0m0s');
    expect(formatQuotaWindow(90)).toBe('1m30s');
    expect(goDuration(59_280)).toBe('59.28s');
    expect(goDuration(250)).toBe('250ms');
  });
});

describe('budget periods (fixed UTC periods)', () => {
  const at = Date.parse('2026-12-03T15:42:10Z'); // a Thursday
  it.each([
    ['1h', '2026-12-03T15:00:00.000Z', '2026-12-03T16:00:00.000Z'],
    ['1d', '2026-12-03T00:00:00.000Z', '2026-12-04T00:00:00.000Z'],
    ['7d', '2026-11-30T00:00:00.000Z', '2026-12-07T00:00:00.000Z'],
    ['month', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
  ] as const)('%s', (window, start, end) => {
    const period = budgetPeriod(window, at);
    expect(new Date(period.start).toISOString()).toBe(start);
    expect(new Date(period.end).toISOString()).toBe(end);
  });

  it('30d periods are consecutive from the epoch and hold the time', () => {
    const { start, end } = budgetPeriod('30d', at);
    expect(start % (30 * 86_400_000)).toBe(0);
    expect(end - start).toBe(30 * 86_400_000);
    expect(start <= at && at < end).toBe(true);
  });

  it('a period counter resets at the period end and ignores a settlement of the previous period', () => {
    const counter = new PeriodCounter('1h');
    const hour = Date.parse('2026-12-03T15:00:00Z');
    counter.add(hour + 1000, 10);
    expect(counter.total(hour + 2000)).toBe(10);
    expect(counter.total(hour + 3_600_000)).toBe(0);
    counter.add(hour + 5000, 7); // admitted in the previous hour, settled now
    expect(counter.total(hour + 3_600_001)).toBe(0);
    expect(counter.freesAt(hour + 3_600_001, 1)).toBe(hour + 7_200_000);
  });
});

describe('rolling counters', () => {
  it('counts the last 60 one-second buckets and says when enough leaves', () => {
    const counter = new RollingCounter(60_000, 1000);
    const t = 1_000_000_000;
    counter.add(t, 1);
    counter.add(t + 10_000, 1);
    counter.add(t + 20_000, 1);
    expect(counter.total(t + 30_000)).toBe(3);
    expect(counter.freesAt(t + 30_000, 1)).toBe(t + 60_000);
    expect(counter.freesAt(t + 30_000, 2)).toBe(t + 70_000);
    expect(counter.freesAt(t + 30_000, 4)).toBe(Number.POSITIVE_INFINITY);
    expect(counter.clearsAt(t + 30_000)).toBe(t + 80_000);
    expect(counter.total(t + 60_000)).toBe(2);
    expect(counter.total(t + 80_000)).toBe(0);
    expect(counter.clearsAt(t + 80_000)).toBe(t + 80_000);
  });

  it('uses at most 120 buckets of whole seconds', () => {
    const counter = RollingCounter.forWindow(30 * 86_400_000);
    expect(counter.bucketMs).toBe(21_600_000);
    expect(RollingCounter.forWindow(60_000).bucketMs).toBe(1000);
  });
});
