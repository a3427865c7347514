import type { Readable } from 'node:stream';
import { type Dispatcher, Pool, errors as undiciErrors } from 'undici';
import { catalogProviderOf, type UpstreamConfig } from './upstream-config.ts';

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

export interface UpstreamTimeout {
  ms: number;
  /**
   * The setting that raises it, which a 504 names: the upstream's `timeout_ms`, or
   * KEYTALLY_UPSTREAM_TIMEOUT_MS; null for a fixed bound of keytally's own.
   */
  setting: string | null;
}

/**
 * How long an upstream may take: its own `timeout_ms` when it has one, else the global
 * KEYTALLY_UPSTREAM_TIMEOUT_MS, each with the setting a 504 tells the client to raise.
 */
export function upstreamTimeout(name: string, ownMs: number | undefined, globalMs: number): UpstreamTimeout {
  return ownMs === undefined
    ? { ms: globalMs, setting: 'KEYTALLY_UPSTREAM_TIMEOUT_MS' }
    : { ms: ownMs, setting: `timeout_ms of the upstream "${name}" in KEYTALLY_CONFIG` };
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
  /** How long it may take to start answering, for every request sent to it (then 504). */
  timeout: UpstreamTimeout;
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
  const timeout = upstreamTimeout(upstream.name, upstream.timeout_ms, defaultTimeoutMs);
  const pool = new Pool(base.origin, {
    connections: POOL_CONNECTIONS,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeout.ms,
    // A stream may pause between tokens (a reasoning model thinking); the same limit applies.
    bodyTimeout: timeout.ms,
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
    timeout,
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
