/**
 * Exact cost arithmetic. A rate is micro-USD per million tokens, which is pico-USD per token: an
 * integer for any price with up to 6 decimals in USD per million tokens (every catalogue price and
 * every admin price, which are validated to that precision). A row's cost is the sum of its token
 * counts times their rates, in pico-USD (an exact integer), rounded once to nano-USD, half up.
 * Rollups then add integers, so their sums equal the rows' sums exactly.
 */

export interface Rates {
  input: number;
  output: number;
  /** Cached input (cache reads); the input rate when the price has none. */
  cachedInput: number;
  /** Cache writes (Anthropic's cache_creation_input_tokens); the input rate when the price has none. */
  cacheWrite: number;
}

/** The token counts a price applies to. `prompt` includes `cached` and `cacheWrite`. */
export interface CostCounts {
  prompt: number;
  completion: number;
  cached: number;
  cacheWrite: number;
  /** Part of `completion` (providers bill reasoning as output); kept for the record, priced as output. */
  reasoning: number;
}

const PICOS_PER_NANO = 1000;

/** USD per million tokens (as prices are quoted) → integer micro-USD per million tokens. */
export function microsOf(usdPerMillion: number): number {
  return Math.round(usdPerMillion * 1_000_000);
}

/** Cost in nano-USD: pico-USD summed exactly, rounded half up once. */
export function costNanosOf(rates: Rates, counts: CostCounts): number {
  const cached = Math.min(counts.cached, counts.prompt);
  const cacheWrite = Math.min(counts.cacheWrite, counts.prompt - cached);
  const uncached = counts.prompt - cached - cacheWrite;
  const picos =
    uncached * rates.input +
    cached * rates.cachedInput +
    cacheWrite * rates.cacheWrite +
    counts.completion * rates.output;
  if (Number.isSafeInteger(picos)) return Math.floor((picos + PICOS_PER_NANO / 2) / PICOS_PER_NANO);
  // Past 2^53 pico-USD (~$9,000 in one row): the same sum in BigInt, still exact.
  const big =
    BigInt(uncached) * BigInt(rates.input) +
    BigInt(cached) * BigInt(rates.cachedInput) +
    BigInt(cacheWrite) * BigInt(rates.cacheWrite) +
    BigInt(counts.completion) * BigInt(rates.output);
  return Number((big + BigInt(PICOS_PER_NANO / 2)) / BigInt(PICOS_PER_NANO));
}

/** Nano-USD → USD as a decimal number (API responses). */
export function usdOf(nanos: number): number {
  return nanos / 1e9;
}
