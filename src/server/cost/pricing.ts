import type { UsageEvent } from '../usage/recorder.ts';
import type { CatalogProvider, PriceBook } from './price-book.ts';
import type { CostCounts } from './rates.ts';

// One counts object reused for every row: pricing runs synchronously on the request path, so no
// two rows ever share it at the same time.
const scratch: CostCounts = { prompt: 0, completion: 0, cached: 0, cacheWrite: 0, reasoning: 0 };

/** Sets a usage row's cost_nanos and price_source from its tokens, model and time (record time). */
export function priceUsageRow(book: PriceBook, provider: CatalogProvider, row: UsageEvent): void {
  scratch.prompt = row.prompt_tokens ?? 0;
  scratch.completion = row.completion_tokens ?? 0;
  scratch.cached = row.cached_tokens ?? 0;
  scratch.cacheWrite = row.cache_write_tokens ?? 0;
  scratch.reasoning = row.reasoning_tokens ?? 0;
  const { costNanos, source } = book.costOf(row.model ?? '', provider, row.created_at, scratch);
  row.cost_nanos = costNanos;
  row.price_source = source;
}
