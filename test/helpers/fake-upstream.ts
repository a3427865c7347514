import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { respondOllama } from './fake-ollama.ts';

/**
 * A real HTTP server on 127.0.0.1 that speaks OpenAI (chat/completions/embeddings, Responses,
 * Anthropic Messages with its error shape and count_tokens, /v1/models) below `/v1`, and Ollama's
 * native API below `/api` (fake-ollama.ts), for gateway tests and the bench. Behaviour is chosen by the
 * request's model (by prefix, so tests can make every model name unique, e.g. `fake-slow-17`):
 * - `fake-429`, `fake-500`: that status with an OpenAI error body;
 * - `fake-slow`: the first byte after `slowMs`;
 * - `fake-no-usage`: no usage in JSON, and streams ignore `include_usage`;
 * - `fake-break`: a stream that dies (socket destroyed) after 2 chunks;
 * - `fake-long`: a stream of 200 chunks 20 ms apart (for client disconnects);
 * - `fake-no-count`: no /v1/messages/count_tokens (404);
 * - anything else: a normal answer.
 * Streams are written with every event split across two writes, so a proxy must reassemble them.
 * Every request is recorded: headers, body, and whether the client closed before the end.
 */

export const FAKE_REPLY_WORDS = ['Hello', ' from', ' the', ' fake', ' upstream', '!'];
export const FAKE_REPLY = FAKE_REPLY_WORDS.join('');
/** Usage the fake reports: fixed prompt tokens, one completion token per chunk. */
export const FAKE_PROMPT_TOKENS = 13;
export const FAKE_COMPLETION_TOKENS = FAKE_REPLY_WORDS.length;
export const FAKE_EMBEDDING_TOKENS = 4;
export const FAKE_MODELS = ['fake-model', 'fake-other'];

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> | null;
  /** True when the client (keytally) closed the connection before the response ended. */
  clientClosed: boolean;
  completed: boolean;
}

export interface FakeUpstream {
  url: string;
  /** Base URL with `/v1`, as KEYTALLY_UPSTREAM_URL takes it. */
  baseUrl: string;
  requests: ReceivedRequest[];
  /** Resolves when a matching request has arrived (its body read, the answer not yet sent). */
  waitForRequestStart(predicate: (request: ReceivedRequest) => boolean): Promise<ReceivedRequest>;
  /** Resolves when a request with this model has finished (completed or closed by the client). */
  waitForRequestEnd(predicate: (request: ReceivedRequest) => boolean): Promise<ReceivedRequest>;
  close(): Promise<void>;
}

export interface FakeUpstreamOptions {
  slowMs?: number;
  /** Models listed by /v1/models (default FAKE_MODELS). */
  models?: string[];
  /** Do not record requests (the bench). */
  quiet?: boolean;
  /** Write each SSE event whole, in one write (the bench: measures the proxy, not the reassembly). */
  wholeEvents?: boolean;
}

const CREATED = 1_764_288_000;

function openAiError(status: number, message: string) {
  return { error: { message, type: status === 429 ? 'rate_limit_error' : 'server_error', code: status } };
}

function anthropicError(type: string, message: string) {
  return { type: 'error', error: { type, message } };
}

export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const requests: ReceivedRequest[] = [];
  const waiters: { predicate: (r: ReceivedRequest) => boolean; resolve: (r: ReceivedRequest) => void }[] = [];
  const startWaiters: typeof waiters = [];
  const settle = (received: ReceivedRequest) => {
    for (const waiter of [...waiters]) {
      if (waiter.predicate(received)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(received);
      }
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> | null = null;
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : null;
      } catch {
        body = null;
      }
      const received: ReceivedRequest = {
        method: req.method ?? '',
        path: (req.url ?? '').split('?')[0] ?? '',
        headers: req.headers,
        body,
        clientClosed: false,
        completed: false,
      };
      if (!options.quiet) requests.push(received);
      for (const waiter of [...startWaiters]) {
        if (waiter.predicate(received)) {
          startWaiters.splice(startWaiters.indexOf(waiter), 1);
          waiter.resolve(received);
        }
      }
      res.on('close', () => {
        if (!res.writableFinished) received.clientClosed = true;
        else received.completed = true;
        settle(received);
      });
      void respond(received, res, options).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseUrl: `${url}/v1`,
    requests,
    waitForRequestStart(predicate) {
      const started = requests.find(predicate);
      if (started) return Promise.resolve(started);
      return new Promise((resolve) => startWaiters.push({ predicate, resolve }));
    },
    waitForRequestEnd(predicate) {
      const done = requests.find((r) => (r.clientClosed || r.completed) && predicate(r));
      if (done) return Promise.resolve(done);
      return new Promise((resolve) => waiters.push({ predicate, resolve }));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function sendJson(res: http.ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Writes each event in two halves (split mid-JSON) so the reader must reassemble it. */
export async function writeEvents(
  res: http.ServerResponse,
  events: string[],
  options: { delayMs?: number; breakAfter?: number; whole?: boolean; contentType?: string } = {},
): Promise<void> {
  res.writeHead(200, {
    'content-type': options.contentType ?? 'text/event-stream',
    'cache-control': 'no-cache',
  });
  for (const [index, event] of events.entries()) {
    if (res.destroyed) return;
    if (options.breakAfter !== undefined && index === options.breakAfter) {
      res.socket?.destroy();
      return;
    }
    if (options.whole) {
      res.write(event);
    } else {
      const cut = Math.floor(event.length / 2);
      res.write(event.slice(0, cut));
      await new Promise((resolve) => setImmediate(resolve));
      res.write(event.slice(cut));
    }
    if (options.delayMs) await sleep(options.delayMs);
  }
  res.end();
}

const data = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;
const named = (event: string, payload: unknown) => `event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`;

async function respond(
  received: ReceivedRequest,
  res: http.ServerResponse,
  options: FakeUpstreamOptions,
): Promise<void> {
  const body = received.body ?? {};
  const model = typeof body.model === 'string' ? body.model : 'fake-model';
  if (received.method === 'GET' && received.path === '/v1/models') {
    const models = options.models ?? FAKE_MODELS;
    sendJson(res, 200, {
      object: 'list',
      data: models.map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'fake' })),
    });
    return;
  }
  if (received.path.startsWith('/api/')) {
    await respondOllama(received, res, options);
    return;
  }
  if (received.method !== 'POST') {
    sendJson(res, 404, openAiError(404, `no route ${received.path}`));
    return;
  }
  const anthropic = received.path.startsWith('/v1/messages');
  if (model.startsWith('fake-429')) {
    res.setHeader('retry-after', '7');
    const message = 'Rate limit reached for fake-429';
    sendJson(res, 429, anthropic ? anthropicError('rate_limit_error', message) : openAiError(429, message));
    return;
  }
  if (model.startsWith('fake-500')) {
    const message = 'The fake upstream had an internal error';
    sendJson(res, 500, anthropic ? anthropicError('api_error', message) : openAiError(500, message));
    return;
  }
  if (model.startsWith('fake-slow')) await sleep(options.slowMs ?? 2000);
  const noUsage = model.startsWith('fake-no-usage');
  const stream = body.stream === true;
  const words = model.startsWith('fake-long')
    ? Array.from({ length: 200 }, (_, i) => ` w${i}`)
    : FAKE_REPLY_WORDS;
  const streamOptions = {
    delayMs: model.startsWith('fake-long') ? 20 : 0,
    breakAfter: model.startsWith('fake-break') ? 2 : undefined,
    whole: options.wholeEvents === true,
  };
  const text = words.join('');
  const usage = {
    prompt_tokens: FAKE_PROMPT_TOKENS,
    completion_tokens: words.length,
    total_tokens: FAKE_PROMPT_TOKENS + words.length,
  };

  switch (received.path) {
    case '/v1/chat/completions':
    case '/v1/completions': {
      const chat = received.path === '/v1/chat/completions';
      const id = chat ? 'chatcmpl-fake' : 'cmpl-fake';
      if (!stream) {
        const choice = chat
          ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }
          : { index: 0, text, finish_reason: 'stop' };
        sendJson(res, 200, {
          id,
          object: chat ? 'chat.completion' : 'text_completion',
          created: CREATED,
          model,
          choices: [choice],
          ...(noUsage ? {} : { usage }),
        });
        return;
      }
      const object = chat ? 'chat.completion.chunk' : 'text_completion';
      const frame = (piece: string, finish: string | null) => ({
        id,
        object,
        created: CREATED,
        model,
        choices: [
          chat
            ? { index: 0, delta: { content: piece }, finish_reason: finish }
            : { index: 0, text: piece, finish_reason: finish },
        ],
      });
      const events = words.map((word) => data(frame(word, null)));
      events.push(data(frame('', 'stop')));
      const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
      if (includeUsage === true && !noUsage) {
        events.push(data({ id, object, created: CREATED, model, choices: [], usage }));
      }
      events.push('data: [DONE]\n\n');
      await writeEvents(res, events, streamOptions);
      return;
    }
    case '/v1/embeddings': {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      sendJson(res, 200, {
        object: 'list',
        model,
        data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] })),
        ...(noUsage
          ? {}
          : { usage: { prompt_tokens: FAKE_EMBEDDING_TOKENS, total_tokens: FAKE_EMBEDDING_TOKENS } }),
      });
      return;
    }
    case '/v1/responses': {
      const responsesUsage = {
        input_tokens: usage.prompt_tokens,
        output_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens,
      };
      const response = {
        id: 'resp_fake',
        object: 'response',
        created_at: CREATED,
        model,
        status: 'completed',
        output: [
          {
            type: 'message',
            id: 'msg_fake',
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', text, annotations: [] }],
          },
        ],
        ...(noUsage ? {} : { usage: responsesUsage }),
      };
      if (!stream) {
        sendJson(res, 200, response);
        return;
      }
      const base = { ...response, status: 'in_progress', output: [], usage: null };
      const events = [
        named('response.created', { type: 'response.created', sequence_number: 0, response: base }),
      ];
      words.forEach((word, i) => {
        events.push(
          named('response.output_text.delta', {
            type: 'response.output_text.delta',
            sequence_number: i + 1,
            item_id: 'msg_fake',
            output_index: 0,
            content_index: 0,
            delta: word,
          }),
        );
      });
      events.push(
        named('response.completed', {
          type: 'response.completed',
          sequence_number: words.length + 1,
          response: noUsage ? { ...response, usage: null } : response,
        }),
      );
      await writeEvents(res, events, streamOptions);
      return;
    }
    case '/v1/messages/count_tokens': {
      // `fake-no-count`: an OpenAI-compatible server without the route (404, like the default).
      if (model.startsWith('fake-no-count')) break;
      sendJson(res, 200, { input_tokens: FAKE_PROMPT_TOKENS });
      return;
    }
    case '/v1/messages': {
      if (!stream) {
        sendJson(res, 200, {
          id: 'msg_fake',
          type: 'message',
          role: 'assistant',
          model,
          content: [{ type: 'text', text }],
          stop_reason: 'end_turn',
          usage: { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens },
        });
        return;
      }
      const events = [
        named('message_start', {
          type: 'message_start',
          message: {
            id: 'msg_fake',
            type: 'message',
            role: 'assistant',
            model,
            content: [],
            usage: { input_tokens: usage.prompt_tokens, output_tokens: 1 },
          },
        }),
        named('content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'text', text: '' },
        }),
        ...words.map((word) =>
          named('content_block_delta', {
            type: 'content_block_delta',
            index: 0,
            delta: { type: 'text_delta', text: word },
          }),
        ),
        named('content_block_stop', { type: 'content_block_stop', index: 0 }),
        named('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn' },
          usage: { output_tokens: usage.completion_tokens },
        }),
        named('message_stop', { type: 'message_stop' }),
      ];
      await writeEvents(res, events, streamOptions);
      return;
    }
  }
  sendJson(res, 404, openAiError(404, `no route ${received.path}`));
}
