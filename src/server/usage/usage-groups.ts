import type { UsageBucket, UsageTotals } from '../../shared/usage.ts';
import { usdOf } from '../cost/rates.ts';
import type { Sums } from './usage.repository.ts';

/** Usage facts summed into groups and buckets, and their totals: shared by every usage answer. */

/** A group's sums: a fact's own (cost in integer nano-USD, converted to USD only in the response). */
export type Counts = Sums;

/** The cost fields every bucket and total carries beside its tokens. */
export const costFields = (counts: Pick<Counts, 'cost_nanos' | 'unpriced_count'>) => ({
  cost: usdOf(counts.cost_nanos),
  unpriced_requests: counts.unpriced_count,
});

// Identity parts joined by NUL: PostgreSQL text cannot contain NUL, and NUL sorts below every other
// character, so comparing joined keys orders groups exactly as comparing their parts would.
export const SEPARATOR = '\u0000';

export interface Group {
  key: string;
  id: string[];
  counts: Counts;
}

/** Adds `counts` to the group of `id` (made on first sight; its counts are a copy, never `counts` itself). */
export function addToGroup(
  groups: Map<string, Group>,
  id: string[],
  counts: Counts,
  key = id.join(SEPARATOR),
): void {
  const group = groups.get(key);
  if (group) {
    group.counts.prompt_tokens += counts.prompt_tokens;
    group.counts.completion_tokens += counts.completion_tokens;
    group.counts.total_tokens += counts.total_tokens;
    group.counts.request_count += counts.request_count;
    group.counts.last_used = Math.max(group.counts.last_used, counts.last_used);
    group.counts.cost_nanos += counts.cost_nanos;
    group.counts.unpriced_count += counts.unpriced_count;
  } else {
    groups.set(key, {
      key,
      id,
      counts: {
        prompt_tokens: counts.prompt_tokens,
        completion_tokens: counts.completion_tokens,
        total_tokens: counts.total_tokens,
        request_count: counts.request_count,
        last_used: counts.last_used,
        cost_nanos: counts.cost_nanos,
        unpriced_count: counts.unpriced_count,
      },
    });
  }
}

/** Sums facts into groups keyed by the given identity; keeps the identity for output. */
export function groupFacts<F extends Counts>(facts: readonly F[], identity: (fact: F) => string[]): Group[] {
  const groups = new Map<string, Group>();
  for (const fact of facts) addToGroup(groups, identity(fact), fact);
  return [...groups.values()];
}

export const byKey = (a: Group, b: Group) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
export const byTokensThenKey = (a: Group, b: Group) =>
  b.counts.total_tokens - a.counts.total_tokens || byKey(a, b);

export type BucketField = 'model' | 'user_id' | 'user_name' | 'source' | 'api_key_id' | 'api_key_name';

/** Buckets grouped by `bucket` + `fields`, identity fields omitted when empty (omitempty), sorted. */
export function toBuckets<F extends Counts & { bucket: string } & Partial<Record<BucketField, string>>>(
  facts: readonly F[],
  fields: readonly BucketField[],
): UsageBucket[] {
  return groupFacts(facts, (fact) => [fact.bucket, ...fields.map((field) => fact[field] ?? '')])
    .sort(byKey)
    .map(({ id, counts }) => {
      // Identity first, then counts: LocalAI's field order.
      const bucket: Record<string, string | number> = { bucket: id[0] ?? '' };
      fields.forEach((field, index) => {
        const value = id[index + 1];
        if (value) bucket[field] = value;
      });
      bucket.prompt_tokens = counts.prompt_tokens;
      bucket.completion_tokens = counts.completion_tokens;
      bucket.total_tokens = counts.total_tokens;
      bucket.request_count = counts.request_count;
      bucket.cost = usdOf(counts.cost_nanos);
      bucket.unpriced_requests = counts.unpriced_count;
      return bucket as unknown as UsageBucket;
    });
}

/** The totals of facts (the sum of their buckets), cost summed in nano-USD before converting. */
export function sumFacts(facts: readonly Counts[]): UsageTotals {
  let costNanos = 0;
  let unpriced = 0;
  const totals = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, request_count: 0 };
  for (const fact of facts) {
    totals.prompt_tokens += fact.prompt_tokens;
    totals.completion_tokens += fact.completion_tokens;
    totals.total_tokens += fact.total_tokens;
    totals.request_count += fact.request_count;
    costNanos += fact.cost_nanos;
    unpriced += fact.unpriced_count;
  }
  return { ...totals, ...costFields({ cost_nanos: costNanos, unpriced_count: unpriced }) };
}
