import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerOllamaNative } from './demo-ollama.ts';
import { countTextTokens, estimatePromptTokens, promptTexts } from './tokens.ts';
import {
  isOllamaNativePath,
  type ModelEntry,
  type Upstream,
  type UpstreamRequest,
  type UpstreamResponse,
  upstreamTimeout,
} from './upstreams.ts';

export const DEMO_MODEL = 'demo';
export const DEMO_UPSTREAM_NAME = 'demo';
// A few dozen words at 8 ms apart: the dashboard's chat visibly streams, a test waits < 0.5 s.
export const DEMO_STREAM_DELAY_MS = 8;
export const DEMO_CREATED = 1_764_288_000;

export const DEMO_MODEL_ENTRY: ModelEntry = {
  id: DEMO_MODEL,
  object: 'model',
  created: DEMO_CREATED,
  owned_by: 'keytally',
};

const tokens = (count: number) => `${count} ${count === 1 ? 'token' : 'tokens'}`;

/** The deterministic reply to a request body: the same input always gives the same text. */
export async function demoReply(body: Record<string, unknown>): Promise<string> {
  const texts = promptTexts(body);
  const last = texts.at(-1)?.replace(/\s+/g, ' ').trim() ?? '';
  const quoted = last.length > 60 ? `${last.slice(0, 57)}...` : last;
  return (
    `Hello from keytally's built-in demo model. You wrote ${tokens(await estimatePromptTokens(body))}` +
    `${quoted ? `, ending with "${quoted}"` : ''}. No upstream is configured, so this reply is canned; ` +
    'set KEYTALLY_UPSTREAM_URL to reach a real model. This request is counted like any other: ' +
    'open the Usage page to see it.'
  );
}

export function jsonResponse(statusCode: number, payload: unknown): UpstreamResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: Readable.from([Buffer.from(JSON.stringify(payload))]),
  };
}

function idFor(kind: string, body: Record<string, unknown>): string {
  return `${kind}-demo${createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 12)}`;
}

export function embeddingOf(text: string): number[] {
  const digest = createHash('sha256').update(text).digest();
  return Array.from({ length: 16 }, (_, i) => Number(((digest[i] ?? 0) / 255 - 0.5).toFixed(6)));
}

async function* streamEvents(
  request: UpstreamRequest,
  chunks: readonly string[],
  frame: (piece: string) => unknown,
  last: readonly unknown[],
): AsyncGenerator<string> {
  for (const piece of chunks) {
    if (request.signal.aborted) return;
    yield `data: ${JSON.stringify(frame(piece))}\n\n`;
    await sleep(DEMO_STREAM_DELAY_MS);
  }
  for (const event of last) yield `data: ${JSON.stringify(event)}\n\n`;
  yield 'data: [DONE]\n\n';
}

export function invalidMessages(messages: unknown): string | undefined {
  if (!Array.isArray(messages) || messages.length === 0) {
    return 'messages: must be a non-empty array of {role, content} objects';
  }
  const index = messages.findIndex(
    (message) =>
      typeof message !== 'object' ||
      message === null ||
      typeof (message as { role?: unknown }).role !== 'string',
  );
  return index === -1 ? undefined : `messages[${index}]: must be an object with a string role`;
}

function invalidPrompt(prompt: unknown): string | undefined {
  if (typeof prompt === 'string' || (Array.isArray(prompt) && prompt.length > 0)) return undefined;
  return 'prompt: must be a string or a non-empty array';
}

/** The `demo` model, served in-process while no upstream is configured (decisions.md section 1). */
export function createDemoUpstream(timeoutMs: number): Upstream {
  return {
    name: DEMO_UPSTREAM_NAME,
    timeout: upstreamTimeout(DEMO_UPSTREAM_NAME, undefined, timeoutMs),
    // The demo model has no catalogue price; `keytally seed-demo` sets an admin price for it.
    provider: null,
    ollama: true,
    describe: 'the built-in demo model',
    models: [DEMO_MODEL],
    async send(request) {
      if (isOllamaNativePath(request.path)) return answerOllamaNative(request);
      const body = JSON.parse(request.body ?? '{}') as Record<string, unknown>;
      const promptTokens = await estimatePromptTokens(body);
      const created = DEMO_CREATED;
      if (request.path === '/embeddings') {
        const inputs = Array.isArray(body.input) ? body.input : [body.input ?? ''];
        return jsonResponse(200, {
          object: 'list',
          model: DEMO_MODEL,
          data: inputs.map((input, index) => ({
            object: 'embedding',
            index,
            embedding: embeddingOf(JSON.stringify(input)),
          })),
          usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
        });
      }
      if (request.path !== '/chat/completions' && request.path !== '/completions') {
        return jsonResponse(400, {
          error: {
            message: `the demo model answers /v1/chat/completions, /v1/completions and /v1/embeddings, not /v1${request.path}; set KEYTALLY_UPSTREAM_URL for a real model`,
            type: 'invalid_request_error',
            code: 'unsupported_endpoint',
          },
        });
      }
      const chat = request.path === '/chat/completions';
      // What a real server refuses, the demo refuses too (400 naming the field; nothing recorded).
      const invalid = chat ? invalidMessages(body.messages) : invalidPrompt(body.prompt);
      if (invalid) {
        return jsonResponse(400, {
          error: {
            message: invalid,
            type: 'invalid_request_error',
            param: chat ? 'messages' : 'prompt',
            code: null,
          },
        });
      }
      const text = await demoReply(body);
      const completionTokens = await countTextTokens(text);
      const usage = {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      };
      const id = idFor(chat ? 'chatcmpl' : 'cmpl', body);
      const object = chat ? 'chat.completion' : 'text_completion';
      if (body.stream !== true) {
        const choice = chat
          ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }
          : { index: 0, text, finish_reason: 'stop' };
        return jsonResponse(200, { id, object, created, model: DEMO_MODEL, choices: [choice], usage });
      }
      const chunkObject = chat ? 'chat.completion.chunk' : 'text_completion';
      const frame = (piece: string, finish: string | null = null) => ({
        id,
        object: chunkObject,
        created,
        model: DEMO_MODEL,
        choices: [
          chat
            ? { index: 0, delta: { content: piece }, finish_reason: finish }
            : { index: 0, text: piece, finish_reason: finish },
        ],
      });
      const pieces = text.match(/\S+\s*/g) ?? [text];
      const tail = [
        frame('', 'stop'),
        { id, object: chunkObject, created, model: DEMO_MODEL, choices: [], usage },
      ];
      return {
        statusCode: 200,
        headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
        body: Readable.from(streamEvents(request, pieces, (piece) => frame(piece), tail)),
      };
    },
    async close() {},
  };
}
