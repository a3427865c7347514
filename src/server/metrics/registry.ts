import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { UsageRecorder } from '../usage/recorder.ts';

// Per-key series are bounded: the 50 keys with the most tokens get their own series, the rest are
// summed into `other`, so a deployment with 10,000 keys still scrapes in a few kilobytes.
const TOP_KEYS = 50;

interface KeyTotals {
  requests: number;
  tokens: number;
}

/** One Prometheus registry per app instance (tests build many apps in one process). */
export interface GatewayMetrics {
  registry: Registry;
  requests: Counter<'route' | 'status' | 'source'>;
  tokens: Counter<'source' | 'model' | 'kind'>;
  unrecorded: Counter<'reason'>;
  /**
   * Counts a request. Per-request counts are plain numbers in a map, handed to prom-client when
   * /metrics is scraped: prom-client's `inc` hashes the label object on every call.
   */
  countRequest(route: string, status: number, source: string): void;
  /** Counts one row's prompt and completion tokens, the same way. */
  countTokens(source: string, model: string, prompt: number, completion: number): void;
  noteKeyTraffic(keyId: string, tokens: number): void;
  /** Counts one priced row's cost (integer nano-USD; published in USD). */
  countCost(source: string, model: string, costNanos: number): void;
}

/** A series' labels and its count so far. */
interface Tally<L extends string> {
  labels: Record<L, string>;
  value: number;
}

/** Replaces a counter's values by the tallies (called from its `collect`, at scrape time). */
function publish<L extends string>(counter: Counter<L>, tallies: Map<string, Tally<L>>): void {
  counter.reset();
  for (const { labels, value } of tallies.values()) counter.inc(labels as never, value);
}

function add<L extends string>(
  tallies: Map<string, Tally<L>>,
  key: string,
  labels: () => Record<L, string>,
  value: number,
): void {
  const found = tallies.get(key);
  if (found) found.value += value;
  else tallies.set(key, { labels: labels(), value });
}
/**
 * Distinct `model` label values kept as their own series; later ones count under `other`. The model
 * comes from the client's request or the upstream's answer, so without a cap a client sending a new
 * model name per request grows every Prometheus series map without bound (measured: +1.5 MB/s RSS
 * under steady load with unique model names).
 */
export const MODEL_LABELS_MAX = 100;

const metricsByOwner = new WeakMap<object, GatewayMetrics>();

/** The metrics of one app, keyed by its deps object (shared by the gateway and /metrics). */
export function metricsFor(owner: object, recorder: UsageRecorder): GatewayMetrics {
  const existing = metricsByOwner.get(owner);
  if (existing) return existing;
  const metrics = createGatewayMetrics(recorder);
  metricsByOwner.set(owner, metrics);
  return metrics;
}

export function createGatewayMetrics(recorder: UsageRecorder): GatewayMetrics {
  const registry = new Registry();
  // Bounded: routes are the registered ones (or `unmatched`), statuses and sources are few, and
  // models are capped at MODEL_LABELS_MAX.
  const requestTallies = new Map<string, Tally<'route' | 'status' | 'source'>>();
  const tokenTallies = new Map<string, Tally<'source' | 'model' | 'kind'>>();
  const requests = new Counter({
    name: 'keytally_requests_total',
    help: 'HTTP requests by route, status and credential source',
    labelNames: ['route', 'status', 'source'] as const,
    registers: [registry],
    collect() {
      publish(this, requestTallies);
    },
  });
  const tokens = new Counter({
    name: 'keytally_tokens_total',
    help: 'Tokens recorded by source, model and kind (prompt or completion)',
    labelNames: ['source', 'model', 'kind'] as const,
    registers: [registry],
    collect() {
      publish(this, tokenTallies);
    },
  });
  // Summed in integer nano-USD (exact), published in USD.
  const costTallies = new Map<string, Tally<'source' | 'model'>>();
  new Counter({
    name: 'keytally_cost_usd_total',
    help: 'Cost in USD of the usage recorded, by source and model (rows without a known price add nothing)',
    labelNames: ['source', 'model'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, value } of costTallies.values()) this.inc(labels, value / 1e9);
    },
  });
  const unrecorded = new Counter({
    name: 'keytally_usage_unrecorded_total',
    help: 'Inference requests that yielded no usage row, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const keyTotals = new Map<string, KeyTotals>();
  const keyRequests = new Counter({
    name: 'keytally_api_key_requests_total',
    help: `Inference requests per API key (top ${TOP_KEYS} keys by tokens, the rest as "other")`,
    labelNames: ['api_key_id'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, totals] of topKeys(keyTotals)) this.inc({ api_key_id: key }, totals.requests);
    },
  });
  new Counter({
    name: 'keytally_api_key_tokens_total',
    help: `Tokens per API key (top ${TOP_KEYS} keys by tokens, the rest as "other")`,
    labelNames: ['api_key_id'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, totals] of topKeys(keyTotals)) this.inc({ api_key_id: key }, totals.tokens);
    },
  });
  void keyRequests;
  new Gauge({
    name: 'keytally_recorder_queue_depth',
    help: 'Usage rows recorded but not yet committed to the database',
    registers: [registry],
    collect() {
      this.set(recorder.stats().queueDepth);
    },
  });
  new Gauge({
    name: 'keytally_recorder_journal_bytes',
    help: 'Bytes of usage journal on disk awaiting commit',
    registers: [registry],
    collect() {
      this.set(recorder.stats().journalBytes);
    },
  });
  new Counter({
    name: 'keytally_recorder_rows_written_total',
    help: 'Usage rows committed to the database by this process',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(recorder.stats().rowsWritten);
    },
  });
  new Counter({
    name: 'keytally_recorder_flush_failures_total',
    help: 'Failed usage flushes (the rows stay in the journal and are retried)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(recorder.stats().flushFailures);
    },
  });
  new Counter({
    name: 'keytally_recorder_rows_refused_total',
    help: 'Usage rows the database refused as data, set aside in usage-refused.jsonl instead of retried',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(recorder.stats().rowsRefused);
    },
  });
  const flushDuration = new Histogram({
    name: 'keytally_recorder_flush_duration_seconds',
    help: 'Time to commit one batch of usage rows (raw rows and rollups, one transaction)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  recorder.onFlush?.((seconds) => flushDuration.observe(seconds));

  const modelLabels = new Set<string>();
  /** The model's label: itself while fewer than MODEL_LABELS_MAX are known, else `other`. */
  const modelLabel = (model: string): string => {
    if (modelLabels.has(model)) return model;
    if (modelLabels.size < MODEL_LABELS_MAX) {
      modelLabels.add(model);
      return model;
    }
    return 'other';
  };

  return {
    registry,
    requests,
    tokens,
    unrecorded,
    countRequest(route, status, source) {
      add(
        requestTallies,
        `${route}\0${status}\0${source}`,
        () => ({ route, status: String(status), source }),
        1,
      );
    },
    countTokens(source, rawModel, prompt, completion) {
      const model = modelLabel(rawModel);
      add(tokenTallies, `p\0${source}\0${model}`, () => ({ source, model, kind: 'prompt' }), prompt);
      add(tokenTallies, `c\0${source}\0${model}`, () => ({ source, model, kind: 'completion' }), completion);
    },
    countCost(source, rawModel, costNanos) {
      const model = modelLabel(rawModel);
      add(costTallies, `${source}\0${model}`, () => ({ source, model }), costNanos);
    },
    noteKeyTraffic(keyId, count) {
      const totals = keyTotals.get(keyId);
      if (totals) {
        totals.requests += 1;
        totals.tokens += count;
      } else keyTotals.set(keyId, { requests: 1, tokens: count });
    },
  };
}

function topKeys(totals: Map<string, KeyTotals>): [string, KeyTotals][] {
  const sorted = [...totals].sort((a, b) => b[1].tokens - a[1].tokens);
  const top = sorted.slice(0, TOP_KEYS);
  const rest = sorted.slice(TOP_KEYS);
  if (rest.length > 0) {
    const other = { requests: 0, tokens: 0 };
    for (const [, value] of rest) {
      other.requests += value.requests;
      other.tokens += value.tokens;
    }
    top.push(['other', other]);
  }
  return top;
}
