/**
 * Usage in Ollama's native answers (https://github.com/ollama/ollama/blob/main/docs/api.md):
 * `prompt_eval_count` / `eval_count` on the final object (`done: true`) of /api/chat and
 * /api/generate, whole or as the last line of an NDJSON stream; `prompt_eval_count` alone on
 * /api/embed; none on the legacy /api/embeddings (estimated).
 */
import type { JsonUsage, StreamUsageTap, TokenCounts, WireShape } from './usage-shapes.ts';

/** Ollama's native routes that produce a usage row (reference section 6.1). */
export const OLLAMA_INFERENCE_PATHS = [
  '/api/chat',
  '/api/generate',
  '/api/embed',
  '/api/embeddings',
] as const;
export type OllamaInferencePath = (typeof OLLAMA_INFERENCE_PATHS)[number];

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
}

/**
 * The counts of a final object; null without `prompt_eval_count` (some Ollama versions omit it when
 * the whole prompt came from the cache), so the row is estimated rather than recorded with 0.
 */
export function readOllamaCounts(body: Json): TokenCounts | null {
  const prompt = count(body.prompt_eval_count);
  if (prompt === undefined) return null;
  const completion = count(body.eval_count) ?? 0;
  return { prompt, completion, total: prompt + completion };
}

/** Generated text of one object: chat `message` (content, thinking, tool calls) or generate `response`. */
function textOf(body: Json): string {
  let text = '';
  if (typeof body.response === 'string') text += body.response;
  if (typeof body.thinking === 'string') text += body.thinking;
  const message = body.message;
  if (isObject(message)) {
    if (typeof message.content === 'string') text += message.content;
    if (typeof message.thinking === 'string') text += message.thinking;
    if (Array.isArray(message.tool_calls)) {
      for (const call of message.tool_calls) {
        if (isObject(call) && isObject(call.function)) text += JSON.stringify(call.function.arguments ?? '');
      }
    }
  }
  return text;
}

export function readOllamaResponse(body: unknown): JsonUsage {
  if (!isObject(body)) return { model: undefined, usage: null, completionText: '' };
  return {
    model: typeof body.model === 'string' ? body.model : undefined,
    usage: readOllamaCounts(body),
    completionText: textOf(body),
  };
}

/** Usage over the lines of one NDJSON stream: text as it comes, counts from the `done` object. */
export class OllamaStreamUsage implements StreamUsageTap {
  model: string | undefined;
  counts: TokenCounts | null = null;
  private readonly text: string[] = [];

  get completionText(): string {
    return this.text.join('');
  }

  observe(event: unknown): void {
    if (!isObject(event)) return;
    if (typeof event.model === 'string' && event.model !== '') this.model = event.model;
    const text = textOf(event);
    if (text !== '') this.text.push(text);
    if (event.done === true) this.counts = readOllamaCounts(event);
  }
}

export const OLLAMA_SHAPE: WireShape = {
  api: 'ollama',
  // Ollama streams unless told not to.
  streams: (body) => body.stream !== false,
  streamType: 'application/x-ndjson',
  format: 'ndjson',
  readWhole: readOllamaResponse,
  streamUsage: () => new OllamaStreamUsage(),
};

/** /api/embed and /api/embeddings never stream. */
export const OLLAMA_EMBED_SHAPE: WireShape = { ...OLLAMA_SHAPE, streams: () => false };
