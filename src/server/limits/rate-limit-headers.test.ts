import { describe, expect, it } from 'vitest';
import { remainingText } from './rate-limit-headers.ts';

describe('x-ratelimit-remaining-* text', () => {
  it('writes the whole units left, as String() would, for rooms of every size', () => {
    const rooms = [
      1,
      7.9,
      999_999_999,
      999_999_999.5,
      1_000_000_000,
      1_000_000_007,
      1_234_567_890_123,
      999_999_999_999_995,
      2 ** 31 * 1_000_000 + 12_345,
      Number.MAX_SAFE_INTEGER,
    ];
    for (const room of rooms) expect(remainingText(room), String(room)).toBe(String(Math.floor(room)));
  });

  it('writes 0 for no room or less than none', () => {
    expect(remainingText(0)).toBe('0');
    expect(remainingText(-12)).toBe('0');
    expect(remainingText(-0.5)).toBe('0');
  });
});
