import type { KeyUsageResponse, UsageResponse } from '../../shared/usage.ts';
import type { Db } from '../db/connection.ts';
import { getModelFacts, type ModelFact } from './usage.repository.ts';
import { sumFacts, toBuckets } from './usage-groups.ts';
import type { ResolvedWindow } from './usage-window.ts';

function modelResponse(facts: ModelFact[], byUser: boolean, window: ResolvedWindow): UsageResponse {
  const usage = toBuckets(facts, byUser ? ['model', 'user_id', 'user_name'] : ['model']);
  return { usage, totals: sumFacts(facts), window: window.window };
}

/** `GET /api/auth/usage`: the caller's buckets by (bucket, model); every source (reference 8.3). */
export async function getUserUsage(db: Db, userId: string, window: ResolvedWindow): Promise<UsageResponse> {
  const facts = await getModelFacts(db, {
    range: window.range,
    granularity: window.granularity,
    userId,
    byUser: false,
  });
  return modelResponse(facts, false, window);
}

/** `GET /api/auth/admin/usage`: buckets by (bucket, model, user id, user name) (reference 8.4). */
export async function getAllUsage(
  db: Db,
  window: ResolvedWindow,
  filter: { userId?: string },
): Promise<UsageResponse> {
  const facts = await getModelFacts(db, {
    range: window.range,
    granularity: window.granularity,
    userId: filter.userId,
    byUser: true,
  });
  return modelResponse(facts, true, window);
}

/** `GET /v1/usage`: one API key's own usage by (bucket, model). */
export async function getKeyUsage(
  db: Db,
  apiKey: { id: string; name: string; prefix: string },
  window: ResolvedWindow,
): Promise<KeyUsageResponse> {
  const facts = await getModelFacts(db, {
    range: window.range,
    granularity: window.granularity,
    apiKeyId: apiKey.id,
    byUser: false,
  });
  const usage = toBuckets(facts, ['model']);
  return {
    object: 'usage',
    api_key: { id: apiKey.id, name: apiKey.name, prefix: apiKey.prefix },
    usage,
    totals: sumFacts(facts),
    window: window.window,
  };
}

/** Query parameters arrive as '' when present but empty; like LocalAI, that means "not set". */
export function optionalParam(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
