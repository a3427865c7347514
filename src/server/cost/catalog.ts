import { calcPrice, findProvider, type ModelInfo, type ModelPrice } from '@pydantic/genai-prices';
import { microsOf, type Rates } from './rates.ts';

/**
 * The `@pydantic/genai-prices` catalogue, read offline from the data bundled in the package (its
 * auto-update hook, updatePrices, is never called: prices change only when the package does).
 * Its calcPrice costs ~18 µs and works in floating-point dollars, so it is called once per
 * (model, provider) to find the catalogue's model; its prices are then compiled into integer rates
 * (rates.ts) and applied per row by the price book.
 */

interface Tiered {
  base: number;
  /** Ascending by `start`: the rate for every token once the prompt has more than `start` tokens. */
  tiers: { start: number; rate: number }[];
}

type RateOrTiers = number | Tiered;

interface CompiledPrice {
  input: RateOrTiers;
  output: RateOrTiers;
  cachedInput: RateOrTiers | null;
  cacheWrite: RateOrTiers | null;
}

interface Variant {
  /** Epoch ms from which this variant applies (0: always); variants are tried newest first. */
  from: number;
  /** Seconds of the UTC day [start, end) for time-of-day prices; null otherwise. */
  timeOfDay: { start: number; end: number } | null;
  price: CompiledPrice;
}

export interface CatalogEntry {
  provider: string;
  model: string;
  variants: Variant[];
}

function compileRate(value: ModelPrice[string]): RateOrTiers | null {
  if (value === undefined) return null;
  if (typeof value === 'number') return microsOf(value);
  return {
    base: microsOf(value.base),
    tiers: [...value.tiers]
      .sort((a, b) => a.start - b.start)
      .map((tier) => ({ start: tier.start, rate: microsOf(tier.price) })),
  };
}

function compilePrice(price: ModelPrice): CompiledPrice {
  return {
    input: compileRate(price.input_mtok) ?? 0,
    output: compileRate(price.output_mtok) ?? 0,
    cachedInput: compileRate(price.cache_read_mtok),
    cacheWrite: compileRate(price.cache_write_mtok),
  };
}

function secondsOfDay(text: string): number {
  const match = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!match) return 0;
  const [, h, m, s, zone] = match;
  let offset = 0;
  if (zone && zone !== 'Z')
    offset =
      (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60);
  return (((Number(h) * 3600 + Number(m) * 60 + Number(s) - offset) % 86_400) + 86_400) % 86_400;
}

function compileVariants(model: ModelInfo): Variant[] {
  if (!Array.isArray(model.prices)) return [{ from: 0, timeOfDay: null, price: compilePrice(model.prices) }];
  const variants: Variant[] = [];
  // genai-prices tries the list from its end: the last matching constraint wins.
  for (let i = model.prices.length - 1; i >= 0; i--) {
    const entry = model.prices[i];
    if (!entry) continue;
    const constraint = entry.constraint;
    const price = compilePrice(entry.prices);
    if (constraint === undefined) variants.push({ from: 0, timeOfDay: null, price });
    else if (constraint.type === 'start_date') {
      variants.push({ from: Date.parse(`${constraint.start_date}T00:00:00Z`), timeOfDay: null, price });
    } else {
      variants.push({
        from: 0,
        timeOfDay: { start: secondsOfDay(constraint.start_time), end: secondsOfDay(constraint.end_time) },
        price,
      });
    }
  }
  // As genai-prices: when nothing matches, the first listed price applies.
  const first = model.prices[0];
  if (first) variants.push({ from: 0, timeOfDay: null, price: compilePrice(first.prices) });
  return variants;
}

/**
 * The catalogue's entry for a model served by `provider` (a genai-prices provider id), or, when the
 * provider is unknown (undefined), by the provider whose model names it follows (gpt-*, claude-*, …).
 * Null when the catalogue has no price for it (local models).
 */
export function findCatalogEntry(model: string, provider: string | undefined): CatalogEntry | null {
  let found: ReturnType<typeof calcPrice>;
  try {
    found = calcPrice({ input_tokens: 0, output_tokens: 0 }, model, { providerId: provider });
  } catch {
    return null;
  }
  if (!found) return null;
  return { provider: found.provider.id, model: found.model.id, variants: compileVariants(found.model) };
}

/** The genai-prices provider id whose API URL pattern matches an upstream URL (api.openai.com → openai). */
export function inferProvider(upstreamUrl: string): string | undefined {
  try {
    return findProvider({ providerApiUrl: upstreamUrl })?.id;
  } catch {
    return undefined;
  }
}

/** True when genai-prices knows this provider id. */
export function isCatalogProvider(id: string): boolean {
  return findProvider({ providerId: id }) !== undefined;
}

function rateAt(rate: RateOrTiers, promptTokens: number): number {
  if (typeof rate === 'number') return rate;
  let current = rate.base;
  for (const tier of rate.tiers) if (promptTokens > tier.start) current = tier.rate;
  return current;
}

/** The entry's rates for a row recorded at `at` with `promptTokens` (tiered prices depend on it). */
export function catalogRatesAt(entry: CatalogEntry, at: number, promptTokens: number): Rates | null {
  for (const variant of entry.variants) {
    if (variant.from > at) continue;
    if (variant.timeOfDay) {
      const seconds = Math.floor((((at % 86_400_000) + 86_400_000) % 86_400_000) / 1000);
      const { start, end } = variant.timeOfDay;
      const inside = end < start ? seconds >= start || seconds < end : seconds >= start && seconds < end;
      if (!inside) continue;
    }
    const { price } = variant;
    const input = rateAt(price.input, promptTokens);
    return {
      input,
      output: rateAt(price.output, promptTokens),
      cachedInput: price.cachedInput === null ? input : rateAt(price.cachedInput, promptTokens),
      cacheWrite: price.cacheWrite === null ? input : rateAt(price.cacheWrite, promptTokens),
    };
  }
  return null;
}
