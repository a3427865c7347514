import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { type Dispatcher, Pool, errors as undiciErrors } from 'undici';
import { z } from 'zod';
import { PriceInput } from '../../shared/cost.ts';
import { type Config, ConfigError } from '../config.ts';
import { inferProvider, isCatalogProvider } from '../cost/catalog.ts';

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
  /**
   * Whose prices the catalogue applies to this upstream's models (a genai-prices provider id such as
   * `openai` or `anthropic`; `none`: admin prices only). Omitted: inferred from the URL's host, else
   * matched by model name (gpt-*, claude-*, …).
   */
  provider: z
    .string()
    .trim()
    .regex(/^[a-z0-9._-]{1,64}$/, 'must be a provider id such as openai, anthropic or none')
    .optional(),
  /**
   * What the upstream speaks: `openai` (url is its OpenAI base, e.g. `…/v1`) or `ollama` (url is
   * the Ollama root; Ollama's native /api/* routes go there, the OpenAI routes to its `/v1`).
   */
  api: z.enum(['openai', 'ollama']).default('openai'),
  /** Sent as OpenAI-Organization / OpenAI-Project instead of the client's (header hygiene). */
  organization: z.string().trim().min(1, 'must not be empty').optional(),
  project: z.string().trim().min(1, 'must not be empty').optional(),
});
export type UpstreamConfig = z.infer<typeof UpstreamConfig>;

export const UpstreamsFile = z.object({
  upstreams: z.array(UpstreamConfig).min(1, 'must list at least one upstream'),
  /** Admin prices of the configuration (decisions.md section 8). */
  prices: z.array(PriceInput).optional(),
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

/** A response read whole (non-streamed requests). */
export interface BufferedResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A buffered exchange in flight: its response, and a way to cancel it when the client leaves. */
export interface PendingExchange {
  response: Promise<BufferedResponse>;
  abort(): void;
}

/** Where a streamed answer goes, piece by piece (undici's handler calls, minus undici). */
export interface ResponseSink {
  onStart(statusCode: number, headers: BufferedResponse['headers']): void;
  /** False: the consumer is full; the upstream pauses until `resume()`. */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  onError(error: Error): void;
}

/** A streamed exchange in flight. */
export interface OpenExchange {
  resume(): void;
  abort(): void;
}

export interface ModelEntry {
  id: string;
  object: 'model';
  created?: number;
  owned_by?: string;
}

/** Paths of Ollama's native API (below the Ollama root), as opposed to OpenAI paths. */
export function isOllamaNativePath(path: string): boolean {
  return path.startsWith('/api/');
}

/**
 * The other spelling of an Ollama model name: Ollama treats `llama3.1` and `llama3.1:latest` as one
 * model, and clients send either (Open WebUI the tag from /api/tags, a config usually the bare name).
 */
export function ollamaAlias(model: string): string {
  return model.endsWith(':latest') ? model.slice(0, -':latest'.length) : `${model}:latest`;
}

/** True when `upstream` lists `model`, an Ollama upstream also under its other spelling. */
export function listsModel(upstream: Pick<Upstream, 'models' | 'ollama'>, model: string): boolean {
  if (!upstream.models) return false;
  return upstream.models.includes(model) || (upstream.ollama && upstream.models.includes(ollamaAlias(model)));
}

export interface Upstream {
  name: string;
  /**
   * The catalogue provider of its models: a genai-prices id, null for none (admin prices only),
   * undefined to match by model name.
   */
  provider?: string | null;
  /** True when it serves Ollama's native /api/* routes (an `api: ollama` upstream, the demo model). */
  ollama: boolean;
  /** Where requests go, for error messages (never contains the key). */
  describe: string;
  models: readonly string[] | undefined;
  send(request: UpstreamRequest): Promise<UpstreamResponse>;
  /**
   * The same request, its answer read whole without a stream in between: the path of every
   * non-streamed request (no AbortController, no body stream, no async iterator per request).
   * Optional; without it the proxy reads `send`'s body.
   */
  exchange?(request: Omit<UpstreamRequest, 'signal'>): PendingExchange;
  /** The same request, its answer handed to `sink` as it arrives (streamed requests). */
  open?(request: Omit<UpstreamRequest, 'signal'>, sink: ResponseSink): OpenExchange;
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
    // Loaded only when there is a file to read (most deployments set KEYTALLY_UPSTREAM_URL or none).
    const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    raw = yaml.parse(text);
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
    if (upstream.provider && upstream.provider !== 'none' && !isCatalogProvider(upstream.provider)) {
      throw new ConfigError(
        'KEYTALLY_CONFIG',
        `${file}: upstream "${upstream.name}": provider "${upstream.provider}" is not in the price catalogue (use e.g. openai, anthropic, google, or none)`,
      );
    }
  }
  return parsed.data;
}

/** The upstreams of the configuration: KEYTALLY_CONFIG's list, else KEYTALLY_UPSTREAM_URL, else none. */
export function upstreamConfigs(config: Config): UpstreamConfig[] {
  if (config.configFile) return loadUpstreamsFile(config.configFile).upstreams;
  if (config.upstreamUrl) {
    return [
      {
        name: 'default',
        url: config.upstreamUrl,
        api_key: config.upstreamApiKey,
        api: isOllamaRoot(config.upstreamUrl) ? 'ollama' : 'openai',
      },
    ];
  }
  return [];
}

/** The admin prices of the KEYTALLY_CONFIG file (none without one). */
export function configPrices(config: Config): PriceInput[] {
  return config.configFile ? (loadUpstreamsFile(config.configFile).prices ?? []) : [];
}

/**
 * `provider` as configured (`none`: null); else none for an Ollama upstream (local models: a local
 * `gpt-oss` is not billed at OpenAI's price); else the genai-prices provider whose API URL this is.
 */
export function catalogProviderOf(
  upstream: Pick<UpstreamConfig, 'provider' | 'url' | 'api'>,
): string | null | undefined {
  if (upstream.provider === 'none') return null;
  if (upstream.provider) return upstream.provider;
  if (upstream.api === 'ollama') return null;
  return inferProvider(upstream.url);
}
/**
 * KEYTALLY_UPSTREAM_URL without a path (`http://127.0.0.1:11434`) is an Ollama root: an OpenAI
 * base URL always has one (`/v1`, `/openai/v1`), and Ollama's own root serves both its native API
 * and, below `/v1`, the OpenAI one.
 */
export function isOllamaRoot(url: string): boolean {
  return new URL(url).pathname.replace(/\/+$/, '') === '';
}

// Client headers about the client's OpenAI account: with keytally's key they would name an
// organization that key does not belong to, and OpenAI refuses the request.
const ACCOUNT_HEADERS = ['openai-organization', 'openai-project'] as const;

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
  const withKey = (request: Omit<UpstreamRequest, 'signal'>): Record<string, string> => {
    const headers = { ...request.headers };
    if (upstream.api_key) {
      headers.authorization = `Bearer ${upstream.api_key}`;
      if (request.path.startsWith('/messages')) headers['x-api-key'] = upstream.api_key;
      for (const name of ACCOUNT_HEADERS) delete headers[name];
    }
    if (upstream.organization) headers['openai-organization'] = upstream.organization;
    if (upstream.project) headers['openai-project'] = upstream.project;
    return headers;
  };
  // An Ollama root serves the OpenAI routes below /v1 and its native ones (/api/*) as they are.
  const openAiBase = upstream.api === 'ollama' ? `${basePath}/v1` : basePath;
  const pathOf = (path: string) => (isOllamaNativePath(path) ? basePath : openAiBase) + path;
  return {
    name: upstream.name,
    provider: catalogProviderOf(upstream),
    ollama: upstream.api === 'ollama',
    describe: `${base.origin}${basePath}`,
    models: upstream.models,
    async send(request) {
      const response = await pool.request({
        path: pathOf(request.path),
        method: request.method,
        headers: withKey(request),
        body: request.body,
        signal: request.signal,
      });
      return { statusCode: response.statusCode, headers: response.headers, body: response.body };
    },
    open(request, sink) {
      return dispatchStreaming(
        pool,
        {
          path: pathOf(request.path),
          method: request.method,
          headers: withKey(request),
          body: request.body,
        },
        sink,
      );
    },
    exchange(request) {
      return dispatchBuffered(pool, {
        path: pathOf(request.path),
        method: request.method,
        headers: withKey(request),
        body: request.body,
      });
    },
    close: () => pool.close(),
  };
}

/**
 * One request through undici's handler interface, the answer collected into a Buffer. Timeouts and
 * connection errors reject with undici's own errors (the proxy maps them to 504/502); `abort()`
 * before the request reached a socket takes effect as soon as it does.
 */
export function dispatchBuffered(pool: Dispatcher, options: Dispatcher.DispatchOptions): PendingExchange {
  let controller: Dispatcher.DispatchController | null = null;
  let abortRequested = false;
  const response = new Promise<BufferedResponse>((resolve, reject) => {
    let statusCode = 0;
    let headers: BufferedResponse['headers'] = {};
    let chunks: Buffer[] = [];
    let size = 0;
    pool.dispatch(options, {
      onRequestStart(started) {
        controller = started;
        if (abortRequested) started.abort(new undiciErrors.RequestAbortedError());
      },
      onResponseStart(_controller, status, responseHeaders) {
        // 1xx informational answers come first; only the final answer's status and headers count.
        statusCode = status;
        headers = responseHeaders;
        chunks = [];
        size = 0;
      },
      onResponseData(_controller, chunk) {
        chunks.push(chunk);
        size += chunk.length;
      },
      onResponseEnd() {
        resolve({
          statusCode,
          headers,
          body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size),
        });
      },
      onResponseError(_controller, error) {
        reject(error);
      },
    });
  });
  return {
    response,
    abort() {
      abortRequested = true;
      if (controller && !controller.aborted) controller.abort(new undiciErrors.RequestAbortedError());
    },
  };
}

/** One request through undici's handler interface, its answer handed to `sink` as it arrives. */
export function dispatchStreaming(
  pool: Dispatcher,
  options: Dispatcher.DispatchOptions,
  sink: ResponseSink,
): OpenExchange {
  let controller: Dispatcher.DispatchController | null = null;
  let abortRequested = false;
  let started = false;
  pool.dispatch(options, {
    onRequestStart(first) {
      controller = first;
      if (abortRequested) first.abort(new undiciErrors.RequestAbortedError());
    },
    onResponseStart(_controller, statusCode, headers) {
      // 1xx informational answers are not the answer.
      if (statusCode < 200) return;
      started = true;
      sink.onStart(statusCode, headers);
    },
    onResponseData(current, chunk) {
      if (started && !sink.onData(chunk)) current.pause();
    },
    onResponseEnd() {
      sink.onEnd();
    },
    onResponseError(_controller, error) {
      sink.onError(error);
    },
  });
  return {
    resume() {
      if (controller?.paused) controller.resume();
    },
    abort() {
      abortRequested = true;
      if (controller && !controller.aborted) controller.abort(new undiciErrors.RequestAbortedError());
    },
  };
}

/** `open` for an upstream that only has `send` (the demo model): its body stream feeds the sink. */
export function openViaSend(
  upstream: Upstream,
  request: Omit<UpstreamRequest, 'signal'>,
  sink: ResponseSink,
): OpenExchange {
  const controller = new AbortController();
  let body: Readable | null = null;
  upstream.send({ ...request, signal: controller.signal }).then(
    (response) => {
      body = response.body;
      sink.onStart(response.statusCode, response.headers);
      body.on('data', (chunk: Buffer | string) => {
        if (!sink.onData(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) body?.pause();
      });
      body.on('end', () => sink.onEnd());
      body.on('error', (error) => sink.onError(error));
    },
    (error: Error) => sink.onError(error),
  );
  return {
    resume: () => body?.resume(),
    abort: () => {
      controller.abort();
      body?.destroy(new undiciErrors.RequestAbortedError());
    },
  };
}
