import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { KeyLimits, UserLimits } from '../../shared/limits.ts';
import type { Db } from '../db/connection.ts';
import type { ApiKeyLimitsRow, QuotaRuleRow, UserLimitsRow } from '../db/schema.ts';

const NANOS_PER_USD = 1_000_000_000;
const toNanos = (usd: number | null) => (usd === null ? null : Math.round(usd * NANOS_PER_USD));
const toUsd = (nanos: number | string | null) => (nanos === null ? null : Number(nanos) / NANOS_PER_USD);

/** SQL of limits: rules, key limits, the admin policy, rejections, and the rebuild at start-up. */

export interface KeyLimitsRecord extends ApiKeyLimitsRow {
  user_id: string;
  name: string;
}

/** Limits of keys that can still be used (revoked keys are skipped). */
export async function listKeyLimits(db: Db, keyId?: string): Promise<KeyLimitsRecord[]> {
  let query = db.kysely
    .selectFrom('api_key_limits as l')
    .innerJoin('api_keys as k', 'k.id', 'l.api_key_id')
    .selectAll('l')
    .select(['k.user_id', 'k.name'])
    .where('k.revoked_at', 'is', null);
  if (keyId) query = query.where('l.api_key_id', '=', keyId);
  const rows = await query.execute();
  return rows.map((row) => ({
    ...row,
    rpm: nullableNumber(row.rpm),
    tpm: nullableNumber(row.tpm),
    max_parallel: nullableNumber(row.max_parallel),
    token_budget: nullableNumber(row.token_budget),
    usd_budget_nanos: nullableNumber(row.usd_budget_nanos),
    soft_threshold: nullableNumber(row.soft_threshold),
    updated_at: Number(row.updated_at),
  }));
}

/** A stored row as the API's limits (USD from nano-USD). */
export function keyLimitsOf(row: ApiKeyLimitsRow): KeyLimits {
  return {
    rpm: row.rpm,
    tpm: row.tpm,
    max_parallel: row.max_parallel,
    token_budget: row.token_budget,
    usd_budget: toUsd(row.usd_budget_nanos),
    budget_window: row.budget_window as KeyLimits['budget_window'],
    soft_threshold: row.soft_threshold,
  };
}

export async function listUserLimits(db: Db, userId?: string): Promise<UserLimitsRow[]> {
  let query = db.kysely.selectFrom('user_limits').selectAll();
  if (userId) query = query.where('user_id', '=', userId);
  return (await query.execute()).map((row) => ({
    ...row,
    token_budget: nullableNumber(row.token_budget),
    usd_budget_nanos: nullableNumber(row.usd_budget_nanos),
    soft_threshold: nullableNumber(row.soft_threshold),
    updated_at: Number(row.updated_at),
  }));
}

export function userLimitsOf(row: UserLimitsRow): UserLimits {
  return {
    token_budget: row.token_budget,
    usd_budget: toUsd(row.usd_budget_nanos),
    budget_window: row.budget_window as UserLimits['budget_window'],
    soft_threshold: row.soft_threshold,
  };
}

/** Stores a user's budgets; none at all removes the row. */
export async function upsertUserLimits(
  db: Db,
  userId: string,
  limits: UserLimits,
  now: number,
): Promise<void> {
  if (limits.token_budget === null && limits.usd_budget === null) {
    await db.kysely.deleteFrom('user_limits').where('user_id', '=', userId).execute();
    return;
  }
  const values = {
    token_budget: limits.token_budget,
    usd_budget_nanos: toNanos(limits.usd_budget),
    budget_window: limits.budget_window,
    soft_threshold: limits.soft_threshold,
    updated_at: now,
  };
  await db.kysely
    .insertInto('user_limits')
    .values({ user_id: userId, ...values })
    .onConflict((oc) => oc.column('user_id').doUpdateSet(values))
    .execute();
}

export async function upsertKeyLimits(db: Db, keyId: string, limits: KeyLimits, now: number): Promise<void> {
  const { usd_budget, ...rest } = limits;
  const values = { ...rest, usd_budget_nanos: toNanos(usd_budget), updated_at: now };
  await db.kysely
    .insertInto('api_key_limits')
    .values({ api_key_id: keyId, ...values })
    .onConflict((oc) => oc.column('api_key_id').doUpdateSet(values))
    .execute();
}

export async function deleteKeyLimits(db: Db, keyId: string): Promise<void> {
  await db.kysely.deleteFrom('api_key_limits').where('api_key_id', '=', keyId).execute();
}

function toQuotaRule(row: QuotaRuleRow): QuotaRuleRow {
  return {
    ...row,
    max_requests: nullableNumber(row.max_requests),
    max_total_tokens: nullableNumber(row.max_total_tokens),
    window_seconds: Number(row.window_seconds),
    created_at: Number(row.created_at),
    updated_at: Number(row.updated_at),
  };
}

/** Rules in `model ASC` order (the global '' rule first), as the reference lists them. */
export async function listQuotaRules(db: Db, userId?: string): Promise<QuotaRuleRow[]> {
  let query = db.kysely.selectFrom('quota_rules').selectAll().orderBy('user_id').orderBy('model');
  if (userId) query = query.where('user_id', '=', userId);
  return (await query.execute()).map(toQuotaRule);
}

/** Upsert by (user, model): an existing rule gets all three values replaced. */
export async function upsertQuotaRule(
  db: Db,
  input: {
    userId: string;
    model: string;
    maxRequests: number | null;
    maxTotalTokens: number | null;
    windowSeconds: number;
  },
  now: number,
): Promise<QuotaRuleRow> {
  const row = await db.kysely
    .insertInto('quota_rules')
    .values({
      id: randomUUID(),
      user_id: input.userId,
      model: input.model,
      max_requests: input.maxRequests,
      max_total_tokens: input.maxTotalTokens,
      window_seconds: input.windowSeconds,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) =>
      oc.columns(['user_id', 'model']).doUpdateSet({
        max_requests: input.maxRequests,
        max_total_tokens: input.maxTotalTokens,
        window_seconds: input.windowSeconds,
        updated_at: now,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
  return toQuotaRule(row);
}

/** False when no rule has this id for this user. */
export async function deleteQuotaRule(db: Db, userId: string, id: string): Promise<boolean> {
  const result = await db.kysely
    .deleteFrom('quota_rules')
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function getPolicyValue(db: Db, name: string): Promise<string | undefined> {
  const row = await db.kysely
    .selectFrom('limit_policies')
    .select('value')
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.value;
}

export async function setPolicyValue(db: Db, name: string, value: string, now: number): Promise<void> {
  await db.kysely
    .insertInto('limit_policies')
    .values({ name, value, updated_at: now })
    .onConflict((oc) => oc.column('name').doUpdateSet({ value, updated_at: now }))
    .execute();
}

/** Adds rejections per (key, hour). */
export async function addRejections(
  db: Db,
  counts: { keyId: string; hour: number; count: number }[],
): Promise<void> {
  for (const entry of counts) {
    await db.kysely
      .insertInto('api_key_rejections')
      .values({ api_key_id: entry.keyId, hour: entry.hour, count: entry.count })
      .onConflict((oc) =>
        oc
          .columns(['api_key_id', 'hour'])
          .doUpdateSet((eb) => ({ count: eb('api_key_rejections.count', '+', entry.count) })),
      )
      .execute();
  }
}

export async function countRejections(
  db: Db,
  keyIds: readonly string[],
  sinceHour: number,
): Promise<Map<string, number>> {
  if (keyIds.length === 0) return new Map();
  const rows = await db.kysely
    .selectFrom('api_key_rejections')
    .select(['api_key_id', sql<number | string>`sum(count)`.as('count')])
    .where('api_key_id', 'in', keyIds)
    .where('hour', '>=', sinceHour)
    .groupBy('api_key_id')
    .execute();
  return new Map(rows.map((row) => [row.api_key_id, Number(row.count)]));
}

// ---- rebuild ----------------------------------------------------------------------------------

/** Tokens and nano-USD since `hour` (a whole UTC hour) of a key or a user, from the hourly rollups. */
export async function sumSince(
  db: Db,
  who: { keyId: string } | { userId: string },
  hour: number,
): Promise<{ tokens: number; nanos: number }> {
  let query = db.kysely
    .selectFrom('usage_rollups_hourly')
    .select([
      sql<number | string | null>`sum(total_tokens)`.as('tokens'),
      sql<number | string | null>`sum(cost_nanos)`.as('nanos'),
    ])
    .where('hour', '>=', hour);
  query =
    'keyId' in who ? query.where('api_key_id', '=', who.keyId) : query.where('user_id', '=', who.userId);
  const row = await query.executeTakeFirst();
  return { tokens: Number(row?.tokens ?? 0), nanos: Number(row?.nanos ?? 0) };
}

/** A key's raw rows since `since` (rpm/tpm: the last minute). */
export async function keyRowsSince(
  db: Db,
  keyId: string,
  since: number,
): Promise<{ at: number; tokens: number }[]> {
  const rows = await db.kysely
    .selectFrom('usage_records')
    .select(['created_at', 'total_tokens'])
    .where('api_key_id', '=', keyId)
    .where('created_at', '>=', since)
    .execute();
  return rows.map((row) => ({ at: Number(row.created_at), tokens: Number(row.total_tokens) }));
}

/** A user's requests and tokens since `since`, per bucket of `bucketMs` (quota rules). */
export async function userBucketsSince(
  db: Db,
  input: { userId: string; model: string; since: number; bucketMs: number },
): Promise<{ at: number; requests: number; tokens: number }[]> {
  // A literal (an integer computed here, never input): PostgreSQL only groups by a select expression
  // whose parameters are the same, and two placeholders are not.
  const bucket = sql<number>`cast(created_at / ${sql.lit(Math.trunc(input.bucketMs))} as bigint)`;
  let query = db.kysely
    .selectFrom('usage_records')
    .select([
      bucket.as('bucket'),
      sql<number | string>`count(*)`.as('requests'),
      sql<number | string>`coalesce(sum(total_tokens), 0)`.as('tokens'),
    ])
    .where('user_id', '=', input.userId)
    .where('created_at', '>=', input.since)
    .groupBy(bucket);
  if (input.model !== '') query = query.where('model', '=', input.model);
  const rows = await query.execute();
  return rows.map((row) => ({
    at: Number(row.bucket) * input.bucketMs,
    requests: Number(row.requests),
    tokens: Number(row.tokens),
  }));
}

function nullableNumber(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}
