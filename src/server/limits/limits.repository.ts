import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { KeyLimits } from '../../shared/limits.ts';
import type { Db } from '../db/connection.ts';
import type { ApiKeyLimitsRow, QuotaRuleRow } from '../db/schema.ts';

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
    soft_threshold: nullableNumber(row.soft_threshold),
    updated_at: Number(row.updated_at),
  }));
}

export async function upsertKeyLimits(db: Db, keyId: string, limits: KeyLimits, now: number): Promise<void> {
  const values = { ...limits, updated_at: now };
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

/** A key's tokens since `hour` (a whole UTC hour), from the hourly rollups. */
export async function sumKeyTokensSince(db: Db, keyId: string, hour: number): Promise<number> {
  const row = await db.kysely
    .selectFrom('usage_rollups_hourly')
    .select(sql<number | string | null>`sum(total_tokens)`.as('tokens'))
    .where('api_key_id', '=', keyId)
    .where('hour', '>=', hour)
    .executeTakeFirst();
  return Number(row?.tokens ?? 0);
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
