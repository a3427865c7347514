import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { UsageRow } from '../../src/server/usage/ingest.repository.ts';

/** A fixed "now" for usage tests: 2026-11-28 12:30:00 UTC (mid-hour, so windows get floored). */
export const NOW = Date.UTC(2026, 10, 28, 12, 30, 0);
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** A complete raw usage row; tests override what they care about. */
export function usageRow(partial: Partial<UsageRow> & Pick<UsageRow, 'user_id'>): UsageRow {
  return {
    id: randomUUID(),
    user_name: partial.user_id,
    source: 'web',
    api_key_id: null,
    api_key_name: '',
    model: 'gpt-4',
    endpoint: '/v1/chat/completions',
    prompt_tokens: 10,
    completion_tokens: 5,
    total_tokens: 15,
    duration_ms: 12,
    created_at: NOW - HOUR,
    usage_origin: 'provider',
    aborted: 0,
    stream: 0,
    upstream: 'default',
    ...partial,
  };
}

/** GET with a Bearer credential (API key or legacy key); returns status and parsed JSON. */
export async function getJson<T = Record<string, unknown>>(
  app: FastifyInstance,
  url: string,
  bearer?: string,
): Promise<{ status: number; body: T }> {
  const response = await app.inject({
    method: 'GET',
    url,
    headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
  });
  return { status: response.statusCode, body: response.json() as T };
}
