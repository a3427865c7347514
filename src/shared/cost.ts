import { z } from 'zod';
import { UsageTimestamp } from './usage.ts';

/**
 * Shapes of admin prices (decisions.md section 8): YAML `prices:` entries and
 * `/api/auth/admin/prices`. Prices are USD per million tokens, as providers quote them, with at most
 * 6 decimals (they are stored as integer micro-USD per million tokens, so cost stays exact).
 */

const MAX_USD_PER_MILLION = 1_000_000;

export const UsdPerMillion = z
  .number({ message: 'must be a number (USD per million tokens)' })
  .min(0, 'must not be negative')
  .max(MAX_USD_PER_MILLION, `must be at most ${MAX_USD_PER_MILLION}`)
  .refine((value) => Math.abs(value * 1e6 - Math.round(value * 1e6)) < 1e-6, {
    message: 'must have at most 6 decimals',
  });

/** One price version to add: an exact model name or a glob (`*`, `?`). */
export const PriceInput = z.object({
  model: z
    .string({ message: 'must be a model name or glob' })
    .trim()
    .min(1, 'must not be empty')
    .max(255, 'must be at most 255 characters'),
  input: UsdPerMillion,
  output: UsdPerMillion,
  cached_input: UsdPerMillion.optional(),
  cache_write: UsdPerMillion.optional(),
  /** RFC3339; default now. Rows recorded from then on get this price. */
  effective_from: UsageTimestamp.optional(),
});
export type PriceInput = z.infer<typeof PriceInput>;

export const PriceOrigin = z.enum(['config', 'api']);

export const PriceDto = z.object({
  id: z.string(),
  model: z.string(),
  input: z.number(),
  output: z.number(),
  cached_input: z.number().nullable(),
  cache_write: z.number().nullable(),
  effective_from: z.string(),
  /** `config`: from the YAML file (read-only here); `api`: added through the API or dashboard. */
  origin: PriceOrigin,
  created_at: z.string().nullable(),
});
export type PriceDto = z.infer<typeof PriceDto>;

/** `GET /api/auth/admin/prices`. */
export const PricesResponse = z.object({
  prices: z.array(PriceDto),
  /**
   * Models with requests without a known price in the last 30 days that no admin price covers yet:
   * candidates for a price.
   */
  unpriced_models: z.array(z.string()),
});
export type PricesResponse = z.infer<typeof PricesResponse>;
