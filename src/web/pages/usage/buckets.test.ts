import { describe, expect, it } from 'vitest';
import { axisLabels, labelsBetween, linearFit, project, unitOfLabel } from './buckets.ts';

describe('usage buckets', () => {
  it('reads the unit from the label shape', () => {
    expect(unitOfLabel('2026-11-28 14:00')).toBe('hour');
    expect(unitOfLabel('2026-11-28')).toBe('day');
    expect(unitOfLabel('2026-11')).toBe('month');
  });

  it('fills the gaps between sparse buckets, across month ends, in UTC', () => {
    expect(labelsBetween(Date.UTC(2026, 0, 30), Date.UTC(2026, 1, 2), 'day')).toEqual([
      '2026-01-30',
      '2026-01-31',
      '2026-02-01',
      '2026-02-02',
    ]);
    expect(labelsBetween(Date.UTC(2025, 11, 15), Date.UTC(2026, 1, 1), 'month')).toEqual([
      '2025-12',
      '2026-01',
      '2026-02',
    ]);
  });

  it('a week axis has every day of the window, plus any label the server sent', () => {
    const now = Date.UTC(2026, 10, 28, 15);
    const labels = axisLabels({ period: 'week' }, ['2026-11-25'], now);
    expect(labels[0]).toBe('2026-11-22');
    expect(labels.at(-1)).toBe('2026-11-28');
    expect(labels).toHaveLength(7);
    const custom = axisLabels(
      { period: 'month', from: '2026-08-19T00:00:00Z', to: '2026-08-22T00:00:00Z' },
      ['2026-08-20'],
      now,
    );
    expect(custom).toEqual(['2026-08-19', '2026-08-20', '2026-08-21']);
    // The server's window (floored to whole days) decides where the axis starts.
    const served = axisLabels({ period: 'week' }, [], now, { from: '2026-11-21T00:00:00.000Z', to: null });
    expect(served[0]).toBe('2026-11-21');
    expect(served).toHaveLength(8);
  });

  it('projects a linear trend, never below zero, and needs two non-empty buckets', () => {
    expect(linearFit([0, 0, 5])).toBeNull();
    expect(linearFit([1, 2, 3])).toEqual({ slope: 1, intercept: 1 });
    expect(project([1, 2, 3], 2)).toEqual([4, 5]);
    expect(project([9, 6, 3], 3)).toEqual([0, 0, 0]);
  });
});
