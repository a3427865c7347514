import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DEMO_CREATED,
  DEMO_MODEL,
  DEMO_STREAM_DELAY_MS,
  demoReply,
  embeddingOf,
  invalidMessages,
  jsonResponse,
} from './demo.ts';
import { countTextTokens, estimatePromptTokens } from './tokens.ts';
import type { UpstreamRequest, UpstreamResponse } from './upstreams.ts';

/**
 * The demo model on Ollama's native API, so an Ollama client (Open WebUI, Continue, the `ollama`
 * npm client) pointed at a fresh `npm start` gets answers: /api/chat and /api/generate (NDJSON
 * streams by default, as Ollama), /api/embed, /api/embeddings, /api/tags, /api/show, /api/version.
 */

/** The Ollama API version the demo reports; clients gate features on it (0.5 added tools streaming). */
export const DEMO_OLLAMA_VERSION = '0.6.0';
// A function, not a constant: demo.ts and this module import each other.
const modifiedAt = () => new Date(DEMO_CREATED * 1000).toISOString();
const DEMO_DETAILS = {
  parent_model: '',
  format: 'demo',
  family: 'demo',
  families: ['demo'],
  parameter_size: '0',
  quantization_level: 'none',
};

const ollamaError = (status: number, message: string) => jsonResponse(status, { error: message });

async function* ndjsonLines(
  request: UpstreamRequest,
  pieces: readonly string[],
  frame: (piece: string) => unknown,
  last: unknown,
): AsyncGenerator<string> {
  for (const piece of pieces) {
    if (request.signal.aborted) return;
    yield `${JSON.stringify(frame(piece))}\n`;
    await sleep(DEMO_STREAM_DELAY_MS);
  }
  yield `${JSON.stringify(last)}\n`;
}

async function answerGeneration(request: UpstreamRequest, body: Record<string, unknown>) {
  const chat = request.path === '/api/chat';
  const invalid = chat
    ? invalidMessages(body.messages)
    : typeof body.prompt === 'string'
      ? undefined
      : 'prompt: must be a string';
  if (invalid) return ollamaError(400, invalid);
  const text = await demoReply(body);
  const promptTokens = await estimatePromptTokens(body);
  const completionTokens = await countTextTokens(text);
  const base = { model: DEMO_MODEL, created_at: modifiedAt() };
  const piece = (content: string) =>
    chat ? { message: { role: 'assistant', content } } : { response: content };
  const done = {
    ...base,
    ...piece(''),
    done: true,
    done_reason: 'stop',
    total_duration: 0,
    load_duration: 0,
    prompt_eval_count: promptTokens,
    prompt_eval_duration: 0,
    eval_count: completionTokens,
    eval_duration: 0,
  };
  if (body.stream === false) return jsonResponse(200, { ...done, ...piece(text) });
  const pieces = text.match(/\S+\s*/g) ?? [text];
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/x-ndjson' },
    body: Readable.from(ndjsonLines(request, pieces, (p) => ({ ...base, ...piece(p), done: false }), done)),
  } satisfies UpstreamResponse;
}

export async function answerOllamaNative(request: UpstreamRequest): Promise<UpstreamResponse> {
  if (request.method === 'GET' && request.path === '/api/version') {
    return jsonResponse(200, { version: DEMO_OLLAMA_VERSION });
  }
  if (request.method === 'GET' && request.path === '/api/tags') {
    return jsonResponse(200, {
      models: [
        {
          name: DEMO_MODEL,
          model: DEMO_MODEL,
          modified_at: modifiedAt(),
          size: 0,
          digest: '',
          details: DEMO_DETAILS,
        },
      ],
    });
  }
  const body = JSON.parse(request.body ?? '{}') as Record<string, unknown>;
  switch (request.path) {
    case '/api/chat':
    case '/api/generate':
      return answerGeneration(request, body);
    case '/api/embed': {
      const inputs = Array.isArray(body.input) ? body.input : [body.input ?? ''];
      return jsonResponse(200, {
        model: DEMO_MODEL,
        embeddings: inputs.map((input) => embeddingOf(JSON.stringify(input))),
        prompt_eval_count: await estimatePromptTokens(body),
      });
    }
    case '/api/embeddings':
      // The legacy route reports no token count (keytally estimates it, as for a real Ollama).
      return jsonResponse(200, { embedding: embeddingOf(JSON.stringify(body.prompt ?? '')) });
    case '/api/show':
      return jsonResponse(200, {
        modelfile: '# keytally built-in demo model',
        parameters: '',
        template: '{{ .Prompt }}',
        details: DEMO_DETAILS,
        model_info: {},
        capabilities: ['completion', 'embedding'],
        modified_at: modifiedAt(),
      });
    default:
      return ollamaError(404, `the demo model does not serve ${request.path}`);
  }
}
