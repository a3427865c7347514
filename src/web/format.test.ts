import { describe, expect, it } from 'vitest';
import { formatUsd, sumUsd } from './format.ts';

describe('formatUsd', () => {
  it('shows cents from a dollar up and two significant digits below', () => {
    expect(formatUsd(12.3449)).toBe('$12.34');
    expect(formatUsd(1234.5)).toBe('$1,234.50');
    expect(formatUsd(0.0042)).toBe('$0.0042');
    expect(formatUsd(0.42)).toBe('$0.42');
    expect(formatUsd(0.00030015)).toBe('$0.00030');
    expect(formatUsd(0)).toBe('$0');
  });

  it('sums through nano-USD exactly', () => {
    expect(sumUsd([0.1, 0.2])).toBe(0.3);
    expect(sumUsd([0.00030015, 0.000139131, 0.000000005])).toBe(0.000439286);
  });
});
