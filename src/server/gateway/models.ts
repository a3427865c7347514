import { DEMO_MODEL_ENTRY } from './demo.ts';
import type { UpstreamSet } from './proxy.ts';
import type { ModelEntry, Upstream } from './upstreams.ts';

// /v1/models must answer even when an upstream hangs; its list is skipped after this long.
const LIST_TIMEOUT_MS = 5000;

async function listUpstreamModels(upstream: Upstream): Promise<ModelEntry[]> {
  const response = await upstream.send({
    path: '/models',
    method: 'GET',
    headers: { accept: 'application/json', 'accept-encoding': 'identity' },
    signal: AbortSignal.timeout(LIST_TIMEOUT_MS),
  });
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  if (response.statusCode < 200 || response.statusCode >= 300) {
    throw new Error(`status ${response.statusCode}`);
  }
  const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown };
  if (!Array.isArray(parsed.data)) throw new Error('no data array');
  return parsed.data
    .filter((entry): entry is ModelEntry => typeof (entry as ModelEntry)?.id === 'string')
    .map((entry) => ({ ...entry, object: 'model' }));
}

export interface ModelList {
  object: 'list';
  data: ModelEntry[];
  /** Upstreams whose list could not be read (logged; their configured models are still listed). */
  failed: { name: string; error: string }[];
}

/** The union of every upstream's list and the models the configuration names, by id. */
export async function listModels(upstreams: UpstreamSet): Promise<ModelList> {
  if (upstreams.demo) return { object: 'list', data: [DEMO_MODEL_ENTRY], failed: [] };
  const byId = new Map<string, ModelEntry>();
  const failed: ModelList['failed'] = [];
  const lists = await Promise.allSettled(upstreams.upstreams.map((upstream) => listUpstreamModels(upstream)));
  lists.forEach((result, index) => {
    const upstream = upstreams.upstreams[index];
    if (!upstream) return;
    if (result.status === 'fulfilled') {
      for (const entry of result.value) {
        // An upstream with a models list serves only those; the catch-all lists all it has.
        if (upstream.models && !upstream.models.includes(entry.id)) continue;
        if (!byId.has(entry.id)) byId.set(entry.id, entry);
      }
    } else {
      failed.push({ name: upstream.name, error: (result.reason as Error)?.message ?? String(result.reason) });
    }
    for (const id of upstream.models ?? []) {
      if (!byId.has(id)) byId.set(id, { id, object: 'model', owned_by: upstream.name });
    }
  });
  return { object: 'list', data: [...byId.values()], failed };
}
