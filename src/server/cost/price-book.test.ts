import { describe, expect, it } from 'vitest';
import { type AdminPrice, PriceBook } from './price-book.ts';
import { costNanosOf } from './rates.ts';

const counts = (prompt: number, completion: number, cached = 0, cacheWrite = 0) => ({
  prompt,
  completion,
  cached,
  cacheWrite,
  reasoning: 0,
});

const price = (
  model: string,
  input: number,
  effectiveFrom = 0,
  origin: AdminPrice['origin'] = 'api',
): AdminPrice => ({
  id: `${model}-${input}-${effectiveFrom}`,
  model,
  input,
  output: 0,
  cachedInput: null,
  cacheWrite: null,
  effectiveFrom,
  origin,
});

describe('costNanosOf', () => {
  it('sums exact pico-USD and rounds half up once', () => {
    const rates = { input: 1_500, output: 0, cachedInput: 1_500, cacheWrite: 1_500 };
    expect(costNanosOf(rates, counts(1, 0))).toBe(2); // 1.5 → 2
    expect(costNanosOf(rates, counts(3, 0))).toBe(5); // 4.5 → 5
    expect(costNanosOf({ ...rates, input: 1_499 }, counts(1, 0))).toBe(1);
  });

  it('stays exact past 2^53 pico-USD', () => {
    const rates = { input: 600_000_000, output: 600_000_000, cachedInput: 0, cacheWrite: 0 };
    // 2e7 × 6e8 = 1.2e16 pico-USD > 2^53.
    expect(costNanosOf(rates, counts(10_000_000, 10_000_001))).toBe(12_000_000_600_000);
  });
});

describe('PriceBook', () => {
  it('prefers an exact name over a glob, a longer glob over a shorter, the newest version in effect', () => {
    const book = new PriceBook([price('llama*', 1_000)]);
    book.setApiPrices([
      price('llama-3*', 2_000),
      price('llama-3-8b', 3_000, 100),
      price('llama-3-8b', 4_000, 200),
    ]);
    const cost = (model: string, at: number) => book.costOf(model, null, at, counts(1_000, 0)).costNanos;
    expect(cost('llama-2', 0)).toBe(1_000);
    expect(cost('llama-3-70b', 0)).toBe(2_000);
    expect(cost('llama-3-8b', 50)).toBe(2_000); // the exact price is not in effect yet
    expect(cost('llama-3-8b', 100)).toBe(3_000);
    expect(cost('llama-3-8b', 250)).toBe(4_000);
  });

  it('drops its cache when the prices change', () => {
    const book = new PriceBook();
    expect(book.costOf('m', null, 0, counts(1, 1))).toEqual({ costNanos: null, source: 'none' });
    book.setApiPrices([price('m', 1_000)]);
    expect(book.costOf('m', null, 0, counts(1, 1))).toEqual({ costNanos: 1, source: 'admin' });
  });

  it('takes the catalogue for well-known models unless the provider is none', () => {
    const book = new PriceBook();
    expect(book.costOf('gpt-4o-mini', 'openai', Date.UTC(2026, 0, 1), counts(1_000_000, 0)).costNanos).toBe(
      150_000_000,
    );
    expect(book.costOf('gpt-4o-mini', undefined, 0, counts(1, 0)).source).toBe('catalog');
    expect(book.costOf('gpt-4o-mini', null, 0, counts(1, 0)).source).toBe('none');
  });

  it("applies a tiered catalogue price by the prompt's size", () => {
    const book = new PriceBook();
    const at = Date.UTC(2026, 0, 1);
    // gemini-2.5-pro: input $1.25 per million up to 200k prompt tokens, $2.50 above.
    expect(book.costOf('gemini-2.5-pro', 'google', at, counts(200_000, 0)).costNanos).toBe(250_000_000);
    expect(book.costOf('gemini-2.5-pro', 'google', at, counts(200_001, 0)).costNanos).toBe(500_002_500);
  });
});
