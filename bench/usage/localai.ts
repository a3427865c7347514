import { type SelectQueryBuilder, sql } from 'kysely';
import type { Db } from '../../src/server/db/connection.ts';
import { type BucketUnit, bucketLabel } from '../../src/server/db/dialect.ts';
import type { Database } from '../../src/server/db/schema.ts';

/**
 * LocalAI's approach, for comparison in the same run: every answer aggregated from the raw
 * usage_records rows with the queries of reference 8.3-8.5 (one GROUP BY per part of the answer), and
 * serialised. Same window and bucket size as keytally's answer, so both count the same rows.
 */

export interface RawQuery {
  since: number | null;
  unit: BucketUnit;
  userId?: string;
  apiKeyId?: string;
  includeLegacy: boolean;
}

type Raw = SelectQueryBuilder<Database, 'usage_records', object>;

function filtered(db: Db, q: RawQuery): Raw {
  let query: Raw = db.kysely.selectFrom('usage_records');
  if (q.userId !== undefined) query = query.where('user_id', '=', q.userId);
  if (q.apiKeyId !== undefined) query = query.where('api_key_id', '=', q.apiKeyId);
  if (q.since !== null) query = query.where('created_at', '>=', q.since);
  if (!q.includeLegacy) query = query.where('source', '<>', 'legacy');
  return query;
}

/** `/api/auth/usage` (byUser false), `/api/auth/admin/usage` (byUser true), `/v1/usage` (apiKeyId). */
export async function rawUsage(db: Db, q: RawQuery, byUser: boolean): Promise<string> {
  const bucket = bucketLabel(db.dialect, 'created_at', q.unit);
  let query = filtered(db, q)
    .select((eb) => [
      bucket.as('bucket'),
      'model',
      eb.fn.sum<number>('prompt_tokens').as('prompt_tokens'),
      eb.fn.sum<number>('completion_tokens').as('completion_tokens'),
      eb.fn.sum<number>('total_tokens').as('total_tokens'),
      eb.fn.countAll<number>().as('request_count'),
    ])
    .groupBy([bucket, 'model']);
  if (byUser) query = query.select(['user_id', 'user_name']).groupBy(['user_id', 'user_name']);
  const rows = await query.orderBy('bucket').execute();
  const totals = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, request_count: 0 };
  for (const row of rows) {
    totals.prompt_tokens += Number(row.prompt_tokens);
    totals.completion_tokens += Number(row.completion_tokens);
    totals.total_tokens += Number(row.total_tokens);
    totals.request_count += Number(row.request_count);
  }
  return JSON.stringify({ usage: rows, totals });
}

/** `/api/auth/usage/sources` and the admin variant: buckets, by_source, by_key, by_user_source, truncated. */
export async function rawSources(db: Db, q: RawQuery, admin: boolean): Promise<string> {
  const bucket = bucketLabel(db.dialect, 'created_at', q.unit);
  const base = filtered(db, q);
  let buckets = base
    .select((eb) => [
      bucket.as('bucket'),
      'source',
      eb.fn.coalesce('api_key_id', sql.lit('')).as('api_key_id'),
      'api_key_name',
      eb.fn.sum<number>('prompt_tokens').as('prompt_tokens'),
      eb.fn.sum<number>('completion_tokens').as('completion_tokens'),
      eb.fn.sum<number>('total_tokens').as('total_tokens'),
      eb.fn.countAll<number>().as('request_count'),
    ])
    .groupBy([bucket, 'source', 'api_key_id', 'api_key_name']);
  if (admin) buckets = buckets.select(['user_id', 'user_name']).groupBy(['user_id', 'user_name']);
  const bucketRows = await buckets.orderBy('bucket').execute();
  const bySource = await base
    .select((eb) => [
      'source',
      eb.fn.sum<number>('total_tokens').as('tokens'),
      eb.fn.countAll<number>().as('requests'),
    ])
    .groupBy('source')
    .execute();
  const byKey = await base
    .where('api_key_id', 'is not', null)
    .where('api_key_id', '<>', '')
    .select((eb) => [
      'api_key_id',
      'api_key_name',
      'user_id',
      'user_name',
      eb.fn.sum<number>('total_tokens').as('tokens'),
      eb.fn.countAll<number>().as('requests'),
      eb.fn.max('created_at').as('last_used'),
    ])
    .groupBy(['api_key_id', 'api_key_name', 'user_id', 'user_name'])
    .orderBy('tokens', 'desc')
    .limit(200)
    .execute();
  let byUserSource: unknown[] = [];
  let truncated = false;
  if (admin) {
    byUserSource = await base
      .where('source', '<>', 'apikey')
      .select((eb) => [
        'source',
        'user_id',
        'user_name',
        eb.fn.sum<number>('total_tokens').as('tokens'),
        eb.fn.countAll<number>().as('requests'),
      ])
      .groupBy(['source', 'user_id', 'user_name'])
      .orderBy('tokens', 'desc')
      .execute();
    const distinct = await base
      .where('api_key_id', 'is not', null)
      .where('api_key_id', '<>', '')
      .select((eb) => eb.fn.count<number>('api_key_id').distinct().as('n'))
      .executeTakeFirst();
    truncated = Number(distinct?.n ?? 0) > 200;
  }
  const grand = bySource.reduce(
    (total, row) => ({
      tokens: total.tokens + Number(row.tokens),
      requests: total.requests + Number(row.requests),
    }),
    { tokens: 0, requests: 0 },
  );
  return JSON.stringify({
    buckets: bucketRows,
    totals: { by_source: bySource, by_key: byKey, by_user_source: byUserSource, grand_total: grand },
    truncated,
  });
}
