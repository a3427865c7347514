import { z } from 'zod';

/**
 * Limits: LocalAI's per-user quota rules (localai-reference-control.md section 1) and keytally's
 * per-key limits (decisions.md section 9). Imported by the server (validation) and the dashboard.
 */

// ---- LocalAI quota rules ---------------------------------------------------------------------

/** The body of `PUT /api/auth/admin/users/:id/quotas`; integers only, like the reference's binder. */
export const QuotaRuleRequest = z.object({
  model: z.string().max(255).default(''),
  max_requests: z.number().int().min(0, 'must not be negative').nullable().optional(),
  max_total_tokens: z.number().int().min(0, 'must not be negative').nullable().optional(),
  window: z.string().optional(),
});
export type QuotaRuleRequest = z.infer<typeof QuotaRuleRequest>;

/** LocalAI's QuotaStatus, with a real `resets_at` (when enough of the window frees). */
export const QuotaStatus = z.object({
  id: z.string(),
  model: z.string(),
  max_requests: z.number().nullable(),
  max_total_tokens: z.number().nullable(),
  window: z.string(),
  current_requests: z.number(),
  current_total_tokens: z.number(),
  resets_at: z.string(),
});
export type QuotaStatus = z.infer<typeof QuotaStatus>;

export const QuotaListResponse = z.object({ quotas: z.array(QuotaStatus) });
export type QuotaListResponse = z.infer<typeof QuotaListResponse>;

/** The seven window tokens the reference's UI offers. */
export const QUOTA_WINDOWS = ['1m', '5m', '1h', '6h', '1d', '7d', '30d'] as const;

// ---- per-key limits ---------------------------------------------------------------------------

/** Budget windows: rolling hours/days are fixed UTC periods here so a budget has one reset time. */
export const BUDGET_WINDOWS = ['1h', '1d', '7d', '30d', 'month'] as const;
export const BudgetWindow = z.enum(BUDGET_WINDOWS, {
  error: `must be one of ${BUDGET_WINDOWS.join(', ')}`,
});
export type BudgetWindow = z.infer<typeof BudgetWindow>;

const positive = z.number().int('must be a whole number').positive('must be at least 1');
/** USD with at most 9 decimals (stored as integer nano-USD, like usage costs). */
const dollars = z
  .number()
  .positive('must be more than 0')
  .max(1_000_000_000, 'must be at most 1000000000')
  .refine((value) => Math.abs(value * 1e9 - Math.round(value * 1e9)) < 1e-3, 'must have at most 9 decimals');

/** A key's limits; null (or absent) = no such limit. */
export const KeyLimits = z
  .object({
    rpm: positive.nullable().default(null),
    tpm: positive.nullable().default(null),
    max_parallel: positive.nullable().default(null),
    token_budget: positive.nullable().default(null),
    /** USD per budget window; requests are priced as usage is (decisions.md section 8). */
    usd_budget: dollars.nullable().default(null),
    budget_window: BudgetWindow.default('month'),
    /** Percent of a budget at which the key is flagged (and the webhook told), e.g. 80. */
    soft_threshold: z.number().int().min(1).max(99, 'must be between 1 and 99').nullable().default(null),
  })
  .strict();
export type KeyLimits = z.infer<typeof KeyLimits>;
export type KeyLimitsInput = z.input<typeof KeyLimits>;

export const NO_LIMITS: KeyLimits = {
  rpm: null,
  tpm: null,
  max_parallel: null,
  token_budget: null,
  usd_budget: null,
  budget_window: 'month',
  soft_threshold: null,
};

/** A user's budgets over all their traffic (every key and the web UI); admins set them. */
export const UserLimits = z
  .object({
    token_budget: positive.nullable().default(null),
    usd_budget: dollars.nullable().default(null),
    budget_window: BudgetWindow.default('month'),
    soft_threshold: z.number().int().min(1).max(99, 'must be between 1 and 99').nullable().default(null),
  })
  .strict();
export type UserLimits = z.infer<typeof UserLimits>;
export type UserLimitsInput = z.input<typeof UserLimits>;

/** One limit of a key as the dashboard shows it. */
export const LimitUsage = z.object({
  limit: z.enum(['rpm', 'tpm', 'max_parallel', 'token_budget', 'usd_budget']),
  /** Requests, tokens, or USD for usd_budget. */
  used: z.number(),
  max: z.number(),
  /** When enough frees / the window resets; null for max_parallel. */
  resets_at: z.string().nullable(),
});
export type LimitUsage = z.infer<typeof LimitUsage>;

export const KeyLimitsStatus = z.object({
  id: z.string(),
  limits: KeyLimits,
  usage: z.array(LimitUsage),
  /** True when a budget is at or over its soft threshold. */
  soft_exceeded: z.boolean(),
  /** True when a budget is spent. */
  exhausted: z.boolean(),
  /** 429s answered for this key in the last 24 hours. */
  rejected: z.number(),
});
export type KeyLimitsStatus = z.infer<typeof KeyLimitsStatus>;

export const UserLimitsStatus = z.object({
  user_id: z.string(),
  limits: UserLimits,
  usage: z.array(LimitUsage),
  soft_exceeded: z.boolean(),
  exhausted: z.boolean(),
});
export type UserLimitsStatus = z.infer<typeof UserLimitsStatus>;

export const KeyLimitsListResponse = z.object({ keys: z.array(KeyLimitsStatus) });
export type KeyLimitsListResponse = z.infer<typeof KeyLimitsListResponse>;

/** Admin settings: limits new keys get when they ask for none, and the most a user may give a key. */
export const KeyLimitPolicy = z
  .object({
    defaults: KeyLimits.default(NO_LIMITS),
    maximums: KeyLimits.default(NO_LIMITS),
  })
  .strict();
export type KeyLimitPolicy = z.infer<typeof KeyLimitPolicy>;
