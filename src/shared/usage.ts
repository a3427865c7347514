import { z } from 'zod';

/**
 * Shapes of the usage API (reference sections 8-9.1, decisions.md sections 3 and 6). Imported by the
 * server (validation, response typing) and the dashboard.
 *
 * Windows: `period` is LocalAI's rolling window (`day` = last 24 h, `week` = 7 × 24 h, `month` =
 * 30 × 24 h, the default and the meaning of any unknown value, `all` = no bound). `from`/`to`
 * (RFC3339, or a bare `YYYY-MM-DD` meaning UTC midnight) select any range instead; `to` is exclusive
 * and defaults to now-and-later (no upper bound, as with periods).
 *
 * Buckets are counted whole: usage is stored in UTC hourly rollups (and daily ones derived from
 * them), so the window start is floored to the start of its bucket (hour for `day`, UTC day for
 * `week`/`month`, UTC month for `all`; `from` to its granularity) and `to` is ceiled to the end of
 * its bucket. Every bucket in a response is therefore complete and the totals are the sum of the
 * buckets shown. `window` in each response says exactly which range was counted.
 */

export const USAGE_PERIODS = ['day', 'week', 'month', 'all'] as const;
export const UsagePeriod = z.enum(USAGE_PERIODS);
export type UsagePeriod = z.infer<typeof UsagePeriod>;

export const USAGE_GRANULARITIES = ['hour', 'day', 'month'] as const;
export const UsageGranularity = z.enum(USAGE_GRANULARITIES);
export type UsageGranularity = z.infer<typeof UsageGranularity>;

export const USAGE_SOURCES = ['apikey', 'web', 'legacy'] as const;
export const UsageSource = z.enum(USAGE_SOURCES);
export type UsageSource = z.infer<typeof UsageSource>;

const RFC3339 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;

/** An RFC3339 timestamp (or a bare date, UTC midnight) that `Date.parse` accepts. */
export const UsageTimestamp = z
  .string()
  .refine((value) => RFC3339.test(value) && Number.isFinite(Date.parse(value.replace(' ', 'T'))), {
    message: 'must be an RFC3339 timestamp such as 2026-11-28T00:00:00Z',
  });

/** `GET /api/auth/usage`, `/api/auth/usage/sources`, `/v1/usage`. */
export const UsageQuery = z.object({
  /** Unknown values mean `month` (reference 8.1), so this is any string. */
  period: z.string().optional(),
  from: UsageTimestamp.optional(),
  to: UsageTimestamp.optional(),
  /** Overrides the bucket size that follows from the period or range length. */
  granularity: UsageGranularity.optional(),
});
export type UsageQuery = z.infer<typeof UsageQuery>;

/**
 * Dashboard extras (decisions.md 7; none of them changes the default, LocalAI-shaped answer):
 * `compare=previous` adds `previous`, the totals of the window of the same length just before this
 * one (null for `all`).
 */
export const CompareQuery = z.object({ compare: z.enum(['previous']).optional() });

/** `GET /api/auth/usage`. */
export const SelfUsageQuery = UsageQuery.extend(CompareQuery.shape);
export type SelfUsageQuery = z.infer<typeof SelfUsageQuery>;

/** `GET /api/auth/admin/usage`. */
export const AdminUsageQuery = SelfUsageQuery.extend({ user_id: z.string().optional() });
export type AdminUsageQuery = z.infer<typeof AdminUsageQuery>;

/** The most series `top` keeps apart; a chart with more stacked series is unreadable anyway. */
export const MAX_TOP_SERIES = 50;

/**
 * Sources extras for the dashboard: `top=N` keeps the buckets of the N largest series (an API key;
 * Web UI / Legacy per user on the admin endpoint, per source on the caller's own) and folds every
 * other series into one bucket per (bucket, source) marked `other: true`, adds `other_series` (how
 * many series were folded), `bucket_labels` (every bucket label of the answer, ascending) and a
 * `sparkline` (tokens per `bucket_labels` entry) on each `by_key` / `by_user_source` entry. `keep`
 * names one more series that stays unfolded (the dashboard's drill-in). With 1,000 keys this turns
 * the 8.4 MB month answer into ~0.2 MB.
 */
export const SourcesViewQuery = CompareQuery.extend({
  top: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_TOP_SERIES, { message: `must be at most ${MAX_TOP_SERIES}` })
    .optional(),
  keep: z.string().max(300).optional(),
});

/** `GET /api/auth/usage/sources`. */
export const SelfSourcesQuery = UsageQuery.extend(SourcesViewQuery.shape);
export type SelfSourcesQuery = z.infer<typeof SelfSourcesQuery>;

/** `GET /api/auth/admin/usage/sources`: both filters optional, combined with AND, never validated. */
export const AdminSourcesQuery = SelfSourcesQuery.extend({
  user_id: z.string().optional(),
  api_key_id: z.string().optional(),
});
export type AdminSourcesQuery = z.infer<typeof AdminSourcesQuery>;

export const EXPORT_FORMATS = ['csv', 'ndjson'] as const;
export const ExportFormat = z.enum(EXPORT_FORMATS);
export type ExportFormat = z.infer<typeof ExportFormat>;

/** `GET /api/auth/usage/export`. */
export const UsageExportQuery = UsageQuery.extend({ format: ExportFormat.default('csv') });
export type UsageExportQuery = z.infer<typeof UsageExportQuery>;

/** `GET /api/auth/admin/usage/export`. */
export const AdminUsageExportQuery = UsageQuery.extend({
  user_id: z.string().optional(),
  api_key_id: z.string().optional(),
  format: ExportFormat.default('csv'),
});
export type AdminUsageExportQuery = z.infer<typeof AdminUsageExportQuery>;

/** The range a response counted: RFC3339 `from` (null = unbounded) and exclusive `to` (null = open). */
export const UsageWindow = z.object({
  from: z.string().nullable(),
  to: z.string().nullable(),
  granularity: UsageGranularity,
});
export type UsageWindow = z.infer<typeof UsageWindow>;

/**
 * One bucket row (reference 8.2). Labels: hour `YYYY-MM-DD HH:00`, day `YYYY-MM-DD`, month `YYYY-MM`,
 * UTC. Identity fields are omitted when empty (Go's omitempty).
 */
export const UsageBucket = z.object({
  bucket: z.string(),
  model: z.string().optional(),
  user_id: z.string().optional(),
  user_name: z.string().optional(),
  source: z.string().optional(),
  api_key_id: z.string().optional(),
  api_key_name: z.string().optional(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  request_count: z.number(),
  /** keytally: cost in USD of the requests with a known price (decisions.md section 8). */
  cost: z.number(),
  /** keytally: requests without a known price (their cost is unknown, not 0). */
  unpriced_requests: z.number(),
  /** Only with `top`: the bucket sums the series folded into "other" (of its `source`). */
  other: z.literal(true).optional(),
});
export type UsageBucket = z.infer<typeof UsageBucket>;

export const UsageTotals = z.object({
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  request_count: z.number(),
  /** keytally: cost in USD of the requests with a known price (decisions.md section 8). */
  cost: z.number(),
  /** keytally: requests without a known price (their cost is unknown, not 0). */
  unpriced_requests: z.number(),
});
export type UsageTotals = z.infer<typeof UsageTotals>;

/**
 * `GET /api/auth/usage` (buckets by bucket, model) and `/api/auth/admin/usage` (bucket, model,
 * user_id, user_name). Ordered by bucket, then model, user_id, user_name (code-unit order).
 */
export const UsageResponse = z.object({
  usage: z.array(UsageBucket),
  totals: UsageTotals,
  window: UsageWindow,
  /** Only with `compare=previous`. */
  previous: UsageTotals.nullable().optional(),
});
export type UsageResponse = z.infer<typeof UsageResponse>;

/** `tokens` is SUM(total_tokens); `requests` a row count. */
export const TotalsEntry = z.object({
  tokens: z.number(),
  requests: z.number(),
  /** keytally: cost in USD of the requests with a known price (decisions.md section 8). */
  cost: z.number(),
  /** keytally: requests without a known price (their cost is unknown, not 0). */
  unpriced_requests: z.number(),
});
export type TotalsEntry = z.infer<typeof TotalsEntry>;

/**
 * One API key's totals (one entry per key id and name snapshots). keytally adds `key_prefix` ('' when
 * the key no longer exists) and `revoked` (true when the key is revoked or deleted), from the server.
 */
export const KeyTotal = z.object({
  api_key_id: z.string(),
  api_key_name: z.string(),
  user_id: z.string(),
  user_name: z.string(),
  tokens: z.number(),
  requests: z.number(),
  /** keytally: cost in USD of the requests with a known price (decisions.md section 8). */
  cost: z.number(),
  /** keytally: requests without a known price (their cost is unknown, not 0). */
  unpriced_requests: z.number(),
  /** RFC3339 (UTC, with milliseconds) of the newest request in the window. */
  last_used: z.string(),
  key_prefix: z.string(),
  revoked: z.boolean(),
  /** Only with `top`: tokens per entry of the response's `bucket_labels`. */
  sparkline: z.array(z.number()).optional(),
});
export type KeyTotal = z.infer<typeof KeyTotal>;

/** Admin only: non-key traffic (web, legacy) per user. */
export const UserSourceTotal = z.object({
  source: z.string(),
  user_id: z.string(),
  user_name: z.string(),
  tokens: z.number(),
  requests: z.number(),
  /** keytally: cost in USD of the requests with a known price (decisions.md section 8). */
  cost: z.number(),
  /** keytally: requests without a known price (their cost is unknown, not 0). */
  unpriced_requests: z.number(),
  /** RFC3339 of the newest request in the window; only with `top`. */
  last_used: z.string().optional(),
  /** Only with `top`: tokens per entry of the response's `bucket_labels`. */
  sparkline: z.array(z.number()).optional(),
});
export type UserSourceTotal = z.infer<typeof UserSourceTotal>;

/**
 * `by_key`: tokens descending (ties: api_key_id, api_key_name, user_id, user_name ascending), at most
 * 200 entries. `by_user_source`: admin only, omitted when empty, tokens descending (ties: source,
 * user_id, user_name).
 */
export const SourceTotals = z.object({
  by_source: z.record(z.string(), TotalsEntry),
  by_key: z.array(KeyTotal),
  by_user_source: z.array(UserSourceTotal).optional(),
  grand_total: TotalsEntry,
});
export type SourceTotals = z.infer<typeof SourceTotals>;

/**
 * `GET /api/auth/usage/sources` (buckets by bucket, source, api_key_id, api_key_name; never legacy;
 * `truncated` always false) and `/api/auth/admin/usage/sources` (also user_id, user_name; legacy
 * included; `truncated` when more than 200 distinct key ids matched). Buckets ordered by bucket,
 * source, api_key_id, api_key_name, user_id, user_name.
 */
export const SourcesResponse = z.object({
  buckets: z.array(UsageBucket),
  totals: SourceTotals,
  truncated: z.boolean(),
  window: UsageWindow,
  /** Only with `top`: how many series the `other: true` buckets stand for. */
  other_series: z.number().optional(),
  /** Only with `top`: the bucket labels the sparklines follow, ascending. */
  bucket_labels: z.array(z.string()).optional(),
  /** Only with `top`: last use of non-key traffic per source (`web`, `legacy`), RFC3339. */
  source_last_used: z.record(z.string(), z.string()).optional(),
  /** Only with `compare=previous`. */
  previous: UsageTotals.nullable().optional(),
});
export type SourcesResponse = z.infer<typeof SourcesResponse>;

/** The most `by_key` entries a sources response carries (reference 8.5). */
export const MAX_KEY_TOTALS = 200;

/**
 * `GET /v1/usage` with an API key: that key's own usage, buckets by (bucket, model), ordered by
 * bucket then model.
 */
export const KeyUsageResponse = z.object({
  object: z.literal('usage'),
  api_key: z.object({ id: z.string(), name: z.string(), prefix: z.string() }),
  usage: z.array(UsageBucket),
  totals: UsageTotals,
  window: UsageWindow,
});
export type KeyUsageResponse = z.infer<typeof KeyUsageResponse>;

/**
 * One exported raw usage row (`format=ndjson` lines; `format=csv` has these columns in this order,
 * with a header line). Times are RFC3339 with milliseconds, UTC. Rows are ordered by created_at, id.
 */
export const USAGE_EXPORT_COLUMNS = [
  'id',
  'created_at',
  'user_id',
  'user_name',
  'source',
  'api_key_id',
  'api_key_name',
  'model',
  'endpoint',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'duration_ms',
  'usage_origin',
  'aborted',
  'stream',
  'upstream',
  'cached_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'cost',
  'price_source',
] as const;

export const UsageExportRow = z.object({
  id: z.string(),
  created_at: z.string(),
  user_id: z.string(),
  user_name: z.string(),
  source: z.string(),
  /** '' for non-key traffic. */
  api_key_id: z.string(),
  api_key_name: z.string(),
  model: z.string(),
  endpoint: z.string(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  duration_ms: z.number(),
  usage_origin: z.string(),
  aborted: z.boolean(),
  stream: z.boolean(),
  upstream: z.string(),
  /** null: not reported by the upstream. */
  cached_tokens: z.number().nullable(),
  cache_write_tokens: z.number().nullable(),
  reasoning_tokens: z.number().nullable(),
  /** USD; null when no price was known (price_source `none`). */
  cost: z.number().nullable(),
  price_source: z.enum(['admin', 'catalog', 'none']),
});
export type UsageExportRow = z.infer<typeof UsageExportRow>;
