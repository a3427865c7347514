import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Config, ConfigError } from '../config.ts';

/** One upstream of a KEYTALLY_CONFIG file. */
export const UpstreamConfig = z.object({
  name: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores'),
  url: z
    .string()
    .trim()
    .refine(
      (value) => /^https?:\/\//.test(value) && URL.canParse(value),
      'must be an http:// or https:// URL',
    ),
  api_key: z.string().min(1, 'must not be empty').optional(),
  /** Models this upstream serves; omitted: it serves every model no other upstream lists. */
  models: z.array(z.string().trim().min(1, 'must not be empty')).optional(),
  timeout_ms: z.number().int().min(1).max(86_400_000).optional(),
});
export type UpstreamConfig = z.infer<typeof UpstreamConfig>;

export const UpstreamsFile = z.object({
  upstreams: z.array(UpstreamConfig).min(1, 'must list at least one upstream'),
});
export type UpstreamsFile = z.infer<typeof UpstreamsFile>;

export interface UpstreamRequest {
  /** Path below the upstream's base URL, e.g. `/chat/completions`. */
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export interface ModelEntry {
  id: string;
  object: 'model';
  created?: number;
  owned_by?: string;
}

export interface Upstream {
  name: string;
  /** Where requests go, for error messages (never contains the key). */
  describe: string;
  models: readonly string[] | undefined;
  send(request: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

/** Reads and validates the KEYTALLY_CONFIG file; throws ConfigError naming the file and field. */
export function loadUpstreamsFile(file: string): UpstreamsFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError('KEYTALLY_CONFIG', `cannot read ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError('KEYTALLY_CONFIG', `${file} is not valid YAML: ${(error as Error).message}`);
  }
  const parsed = UpstreamsFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'file';
    throw new ConfigError('KEYTALLY_CONFIG', `${file}: ${field}: ${issue?.message ?? 'invalid'}`);
  }
  const names = new Set<string>();
  for (const upstream of parsed.data.upstreams) {
    if (names.has(upstream.name)) {
      throw new ConfigError('KEYTALLY_CONFIG', `${file}: upstream name "${upstream.name}" is used twice`);
    }
    names.add(upstream.name);
  }
  return parsed.data;
}

/** The upstreams of the configuration: KEYTALLY_CONFIG's list, else KEYTALLY_UPSTREAM_URL, else none. */
export function upstreamConfigs(config: Config): UpstreamConfig[] {
  if (config.configFile) return loadUpstreamsFile(config.configFile).upstreams;
  if (config.upstreamUrl) {
    return [{ name: 'default', url: config.upstreamUrl, api_key: config.upstreamApiKey }];
  }
  return [];
}

// Keep-alive connections per upstream origin. 128 covers concurrency 64 with streams in flight;
// pipelining stays off because a slow stream would block the requests queued behind it.
const POOL_CONNECTIONS = 128;

/** An OpenAI-compatible HTTP upstream behind an undici connection pool. */
export function createHttpUpstream(upstream: UpstreamConfig, defaultTimeoutMs: number): Upstream {
  const base = new URL(upstream.url);
  const basePath = base.pathname.replace(/\/+$/, '');
  const timeoutMs = upstream.timeout_ms ?? defaultTimeoutMs;
  const pool = new Pool(base.origin, {
    connections: POOL_CONNECTIONS,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    // A stream may pause between tokens (a reasoning model thinking); the same limit applies.
    bodyTimeout: timeoutMs,
  });
  return {
    name: upstream.name,
    describe: `${base.origin}${basePath}`,
    models: upstream.models,
    async send(request) {
      const headers = { ...request.headers };
      if (upstream.api_key) {
        headers.authorization = `Bearer ${upstream.api_key}`;
        if (request.path === '/messages') headers['x-api-key'] = upstream.api_key;
      }
      const response = await pool.request({
        path: `${basePath}${request.path}`,
        method: request.method,
        headers,
        body: request.body,
        signal: request.signal,
      });
      return { statusCode: response.statusCode, headers: response.headers, body: response.body };
    },
    close: () => pool.close(),
  };
}
