import type { AuthContext } from '../auth/context.ts';
import { pathOf } from '../auth/paths.ts';
import { priceUsageRow } from '../cost/pricing.ts';
import type { Ticket } from '../limits/limiter.ts';
import type { UsageEvent } from '../usage/recorder.ts';
import { usageRowId } from '../usage/row-id.ts';
import type { Exchange, ProxyDeps } from './proxy.ts';
import { countTextTokens, estimatePromptTokens } from './tokens.ts';
import type { TokenCounts } from './usage-shapes.ts';

/** What usage_records.model holds (varchar(255): PostgreSQL counts characters, code points). */
export const MODEL_MAX_CHARS = 255;

/**
 * The upstream's own name for the model, as it can be stored: without NULs (PostgreSQL refuses them
 * in text) and cut to the column. A longer name refused by the database would hold up every usage
 * row committed after it; a requested name that long is refused at admission instead.
 */
export function storedModel(model: string): string {
  const clean = model.includes('\u0000') ? model.replaceAll('\u0000', '') : model;
  if (clean.length <= MODEL_MAX_CHARS) return clean;
  return Array.from(clean).slice(0, MODEL_MAX_CHARS).join('');
}

/** The usage row of an exchange, estimating what the upstream did not report. */
export async function buildRow(
  exchange: Exchange,
  model: string | undefined,
  provided: TokenCounts | null,
  /** The completion's text, for an estimate; a stream's is read only if one is needed. */
  completionText: string | (() => string),
  aborted: boolean,
): Promise<UsageEvent> {
  let counts = provided;
  const estimated = !(provided && !aborted);
  if (estimated) {
    const prompt = provided?.prompt ?? (await estimatePromptTokens(exchange.json));
    const completion = Math.max(
      provided?.completion ?? 0,
      await countTextTokens(typeof completionText === 'string' ? completionText : completionText()),
    );
    counts = { prompt, completion, total: prompt + completion };
  }
  const row = rowFor(exchange.auth, {
    model: storedModel(model ?? exchange.requestedModel),
    endpoint: pathOf(exchange.request.url),
    counts: counts ?? { prompt: 0, completion: 0, total: 0 },
    estimated,
    aborted,
    stream: exchange.stream,
    upstream: exchange.upstream.name,
    startedAt: exchange.startedAt,
    durationMs: exchange.deps.now() - exchange.startedAt,
  });
  priceUsageRow(exchange.deps.prices, exchange.upstream.provider, row);
  return row;
}

export async function record(deps: ProxyDeps, row: UsageEvent, ticket: Ticket | null): Promise<void> {
  // Settled before the row is journaled: a limits reload that flushes the journal then finds the
  // row in the database and this request's usage in no counter twice.
  ticket?.settle(row);
  await deps.recorder.record(row);
  deps.metrics.countTokens(row.source, row.model, row.prompt_tokens ?? 0, row.completion_tokens ?? 0);
  if (row.cost_nanos) deps.metrics.countCost(row.source, row.model, row.cost_nanos);
  if (row.api_key_id) deps.metrics.noteKeyTraffic(row.api_key_id, row.total_tokens ?? 0);
}

interface RowInput {
  model: string;
  endpoint: string;
  counts: TokenCounts;
  estimated: boolean;
  aborted: boolean;
  stream: boolean;
  upstream: string;
  startedAt: number;
  durationMs: number;
}

/** A usage row with the reference section 2.4 fields plus keytally's own. */
export function rowFor(auth: AuthContext, input: RowInput): UsageEvent {
  return {
    id: usageRowId(input.startedAt),
    user_id: auth.user.id,
    user_name: auth.user.name,
    source: auth.source ?? 'web',
    api_key_id: auth.apiKey?.id ?? null,
    api_key_name: auth.apiKey?.name ?? '',
    model: input.model,
    endpoint: input.endpoint,
    prompt_tokens: input.counts.prompt,
    completion_tokens: input.counts.completion,
    total_tokens: input.counts.total,
    duration_ms: Math.max(0, Math.round(input.durationMs)),
    created_at: input.startedAt,
    usage_origin: input.estimated ? 'estimated' : 'provider',
    aborted: input.aborted ? 1 : 0,
    stream: input.stream ? 1 : 0,
    upstream: input.upstream,
    // Undefined (left out of the journal line, NULL in the database) when not reported.
    cached_tokens: input.counts.cached,
    cache_write_tokens: input.counts.cacheWrite,
    reasoning_tokens: input.counts.reasoning,
  };
}
