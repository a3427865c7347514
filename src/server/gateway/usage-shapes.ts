/**
 * Reading usage out of the three response shapes of decisions.md section 5: OpenAI
 * chat/completions/embeddings (`prompt_tokens`/`completion_tokens`/`total_tokens`), OpenAI Responses
 * (`input_tokens`/`output_tokens`, nested under `response` in the `response.completed` event) and
 * Anthropic Messages (`message_start` + cumulative `message_delta`). An explicit 0 is a real 0.
 */

import { collectStringValues, firstStringValue, hasNonNullKey, topLevelMembers } from './event-scan.ts';

export interface TokenCounts {
  prompt: number;
  completion: number;
  total: number;
  /**
   * The details that change a price, when the upstream reports them (undefined otherwise): cached
   * input tokens and cache writes (both part of `prompt`), reasoning tokens (part of `completion`).
   */
  cached?: number;
  cacheWrite?: number;
  reasoning?: number;
}

type Json = Record<string, unknown>;

const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
}

/** A usage object in any supported shape; null when it carries no token count at all. */
export function readUsageObject(usage: unknown): TokenCounts | null {
  if (!isObject(usage)) return null;
  let prompt = count(usage.prompt_tokens);
  const input = count(usage.input_tokens);
  if (prompt === undefined && input !== undefined) {
    // Anthropic reports cached prompt tokens beside input_tokens, not inside it.
    prompt =
      input + (count(usage.cache_creation_input_tokens) ?? 0) + (count(usage.cache_read_input_tokens) ?? 0);
  }
  const completion = count(usage.completion_tokens) ?? count(usage.output_tokens);
  if (prompt === undefined && completion === undefined) return null;
  const total = count(usage.total_tokens) ?? (prompt ?? 0) + (completion ?? 0);
  const counts: TokenCounts = { prompt: prompt ?? 0, completion: completion ?? 0, total };
  // Chat/completions, Responses and Anthropic name the details differently.
  const cached =
    detail(usage.prompt_tokens_details, 'cached_tokens') ??
    detail(usage.input_tokens_details, 'cached_tokens') ??
    count(usage.cache_read_input_tokens);
  const cacheWrite = count(usage.cache_creation_input_tokens);
  const reasoning =
    detail(usage.completion_tokens_details, 'reasoning_tokens') ??
    detail(usage.output_tokens_details, 'reasoning_tokens');
  if (cached !== undefined) counts.cached = cached;
  if (cacheWrite !== undefined) counts.cacheWrite = cacheWrite;
  if (reasoning !== undefined) counts.reasoning = reasoning;
  return counts;
}

function detail(details: unknown, field: string): number | undefined {
  return isObject(details) ? count(details[field]) : undefined;
}

function collectText(value: unknown, out: string[]): void {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) collectText(item, out);
  else if (isObject(value)) {
    if (typeof value.text === 'string') out.push(value.text);
    if (typeof value.content === 'string' || Array.isArray(value.content)) collectText(value.content, out);
    if (isObject(value.message)) collectText(value.message, out);
    if (typeof value.arguments === 'string') out.push(value.arguments);
    if (Array.isArray(value.tool_calls)) for (const call of value.tool_calls) collectText(call.function, out);
  }
}

export interface JsonUsage {
  model: string | undefined;
  usage: TokenCounts | null;
  /** Generated text, for the estimate when `usage` is null. */
  completionText: string;
}

/** Usage of a whole (non-streamed) JSON response body. */
export function readJsonResponse(body: unknown): JsonUsage {
  if (!isObject(body)) return { model: undefined, usage: null, completionText: '' };
  const text: string[] = [];
  // chat/completions: choices; Responses: output; Anthropic: content.
  for (const field of ['choices', 'output', 'content']) collectText(body[field], text);
  return {
    model: typeof body.model === 'string' ? body.model : undefined,
    usage: readUsageObject(body.usage),
    completionText: text.join(''),
  };
}

const WHOLE_KEYS = ['usage', 'model'] as const;

/**
 * Usage of a whole JSON answer read from its text: only its top-level `usage` (and `model`) are
 * parsed. Null when that is not enough (no usage with counts: the estimate needs the completion
 * text, so the caller parses the whole body).
 */
export function readJsonResponseText(text: string): JsonUsage | null {
  const members = topLevelMembers(text, WHOLE_KEYS);
  const usageText = members?.get('usage');
  if (!members || usageText === undefined) return null;
  let usage: TokenCounts | null;
  let model: unknown;
  try {
    usage = readUsageObject(JSON.parse(usageText));
    const modelText = members.get('model');
    model = modelText === undefined ? undefined : JSON.parse(modelText);
  } catch {
    return null;
  }
  if (!usage) return null;
  return { model: typeof model === 'string' ? model : undefined, usage, completionText: '' };
}

/** What a relay learns from a stream's events, for its usage row. */
export interface StreamUsageTap {
  readonly model: string | undefined;
  /** Counts the upstream reported; null when it reported none (yet). */
  readonly counts: TokenCounts | null;
  /** Text streamed so far, for the estimate when `counts` is null or the stream was cut. */
  readonly completionText: string;
  /** Feeds one parsed event. */
  observe(event: unknown): void;
  /**
   * Optional fast path: takes one event by its JSON text without a parse, and then returns true (the
   * event carries no usage, so it is never stripped); false: parse it and call `observe`.
   */
  scan?(data: string): boolean;
}

// What a stream may hold of its events unread (their text and model are read only when asked for).
const DEFERRED_CHARS_MAX = 64 * 1024;

/**
 * Accumulates usage over the events of one SSE stream. An event that carries no usage is only kept
 * (`scan`): its text is wanted only for an estimate (a stream without usage, or cut), and its model
 * only when no later event names one, which a usage chunk at the end does. Reading every event was
 * a streamed request's largest cost of its own: ~15 µs of CPU per request of the bench's 9 events,
 * ~5 µs with kept events (bench/README.md, session 8). Kept events are read, in their place, when
 * `model` or `completionText` needs them, and once they hold DEFERRED_CHARS_MAX characters.
 */
export class StreamUsage implements StreamUsageTap {
  private latestModel: string | undefined;
  /**
   * Where in `text` the event that named `latestModel` put its own text: a kept event at or past it
   * came later, and may name a newer model.
   */
  private modelAt = 0;
  private usage: TokenCounts | null = null;
  /** The completion text in pieces, in order; at the indexes in `keptAt`, a kept event's JSON instead. */
  private text: string[] = [];
  private keptAt: number[] = [];
  /** The characters of the kept events' JSON. */
  private keptChars = 0;

  get model(): string | undefined {
    this.readKept(this.modelAt);
    return this.latestModel;
  }

  get counts(): TokenCounts | null {
    return this.usage;
  }

  get completionText(): string {
    this.readKept(0);
    return this.text.join('');
  }

  /** The model an event names, from where its text goes. */
  private nameModel(model: string): void {
    this.latestModel = model;
    this.modelAt = this.text.length;
  }

  /** Takes an event without usage unread (see the class); false: the relay parses it now. */
  scan(data: string): boolean {
    // Usage, or a `\u` escape that could spell its key, is read now: the relay may strip the event.
    if (data.includes('\\u') || hasNonNullKey(data, 'usage')) return false;
    if (this.keptChars + data.length > DEFERRED_CHARS_MAX) this.readKept(0);
    this.keptAt.push(this.text.length);
    this.text.push(data);
    this.keptChars += data.length;
    return true;
  }

  /** Reads the kept events at `from` and after, each in its place (text order and latest model kept). */
  private readKept(from: number): void {
    const kept = this.keptAt;
    if (kept.length === 0 || (kept[kept.length - 1] ?? -1) < from) return;
    const text = this.text;
    const earlier: number[] = [];
    for (const at of kept) {
      if (at < from) {
        earlier.push(at);
        continue;
      }
      // Read as if it came now, into a text of its own, then put in its place.
      const data = text[at] ?? '';
      this.keptChars -= data.length;
      const model = this.latestModel;
      const modelAt = this.modelAt;
      const pieces: string[] = [];
      this.latestModel = undefined;
      this.text = pieces;
      this.read(data);
      const named = this.latestModel;
      this.text = text;
      this.latestModel = model;
      this.modelAt = modelAt;
      text[at] = pieces.length === 1 ? (pieces[0] ?? '') : pieces.join('');
      if (named !== undefined && at >= modelAt) {
        this.latestModel = named;
        this.modelAt = at;
      }
    }
    this.keptAt = earlier;
  }

  /** Reads one event's JSON: its text without a parse when it can, else parsed. */
  private read(data: string): void {
    if (this.readChunk(data)) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    this.observe(parsed);
  }

  /** True when `event` is an OpenAI usage-only chunk (`choices: []` with usage). */
  static isUsageOnlyChunk(event: unknown): boolean {
    return (
      isObject(event) &&
      Array.isArray(event.choices) &&
      event.choices.length === 0 &&
      readUsageObject(event.usage) !== null
    );
  }

  /**
   * An OpenAI chat/completions chunk without usage, read from its text: its model and its text
   * (`content`, `reasoning_content`, a completion's `text`); false for anything else, which is parsed:
   * events with a `type` (Responses, Anthropic), tool calls, log-probabilities, usage, `\u` escapes
   * (which could spell a key), events that are not objects.
   */
  private readChunk(data: string): boolean {
    if (
      data.charCodeAt(0) !== OPEN_BRACE ||
      !data.includes('"choices"') ||
      data.includes('"type"') ||
      data.includes('"tool_calls"') ||
      data.includes('\\u') ||
      hasNonNullKey(data, 'usage') ||
      hasNonNullKey(data, 'logprobs')
    ) {
      return false;
    }
    const before = this.text.length;
    const complete =
      data.charCodeAt(data.length - 1) === CLOSE_BRACE &&
      collectStringValues(data, 'text', this.text) &&
      collectStringValues(data, 'content', this.text) &&
      collectStringValues(data, 'reasoning_content', this.text);
    if (!complete) {
      // Not closed where expected (a cut event, trailing blanks): the parse decides.
      this.text.length = before;
      return false;
    }
    const model = firstStringValue(data, 'model');
    if (model) this.nameModel(model);
    return true;
  }

  /** Feeds one parsed `data:` payload. */
  observe(event: unknown): void {
    if (!isObject(event)) return;
    const type = typeof event.type === 'string' ? event.type : undefined;
    if (type?.startsWith('response.')) {
      this.observeResponsesEvent(type, event);
      return;
    }
    if (type === 'message_start' && isObject(event.message)) {
      if (typeof event.message.model === 'string') this.nameModel(event.message.model);
      this.usage = readUsageObject(event.message.usage) ?? this.usage;
      return;
    }
    if (type === 'message_delta') {
      // Anthropic's message_delta usage is cumulative: it replaces output (and input, when given).
      const delta = readUsageObject(event.usage);
      if (delta && isObject(event.usage)) {
        const prompt = event.usage.input_tokens !== undefined ? delta.prompt : (this.usage?.prompt ?? 0);
        const completion =
          event.usage.output_tokens !== undefined ? delta.completion : (this.usage?.completion ?? 0);
        const merged: TokenCounts = { prompt, completion, total: prompt + completion };
        const cached = delta.cached ?? this.usage?.cached;
        const cacheWrite = delta.cacheWrite ?? this.usage?.cacheWrite;
        if (cached !== undefined) merged.cached = cached;
        if (cacheWrite !== undefined) merged.cacheWrite = cacheWrite;
        this.usage = merged;
      }
      return;
    }
    if (type === 'content_block_delta' && isObject(event.delta)) {
      if (typeof event.delta.text === 'string') this.text.push(event.delta.text);
      if (typeof event.delta.partial_json === 'string') this.text.push(event.delta.partial_json);
      return;
    }
    if (type !== undefined) return;
    // OpenAI chat/completions chunk.
    if (typeof event.model === 'string' && event.model !== '') this.nameModel(event.model);
    const usage = readUsageObject(event.usage);
    if (usage) this.usage = usage;
    if (Array.isArray(event.choices)) {
      for (const choice of event.choices) {
        if (!isObject(choice)) continue;
        if (typeof choice.text === 'string') this.text.push(choice.text);
        if (isObject(choice.delta)) {
          const delta = choice.delta;
          if (typeof delta.content === 'string') this.text.push(delta.content);
          if (typeof delta.reasoning_content === 'string') this.text.push(delta.reasoning_content);
          if (Array.isArray(delta.tool_calls)) {
            for (const call of delta.tool_calls) {
              if (isObject(call) && isObject(call.function) && typeof call.function.arguments === 'string') {
                this.text.push(call.function.arguments);
              }
            }
          }
        }
      }
    }
  }

  private observeResponsesEvent(type: string, event: Json): void {
    if (isObject(event.response)) {
      if (typeof event.response.model === 'string') this.nameModel(event.response.model);
      const usage = readUsageObject(event.response.usage);
      if (usage) this.usage = usage;
    }
    if (type === 'response.output_text.delta' && typeof event.delta === 'string') this.text.push(event.delta);
    if (type === 'response.function_call_arguments.delta' && typeof event.delta === 'string') {
      this.text.push(event.delta);
    }
  }
}

/** How one API family's answers carry usage: the proxy's only protocol-specific part. */
export interface WireShape {
  /** The API family: an `ollama` shape's requests need an upstream that speaks Ollama's API. */
  api: 'openai' | 'ollama';
  /** True when the request body asks for a streamed answer. */
  streams(body: Json): boolean;
  /** Content type of a streamed answer (relayed event by event). */
  streamType: string;
  /** How the relay splits a streamed answer into events. */
  format: 'sse' | 'ndjson';
  /** Usage of a whole JSON answer. */
  readWhole(body: unknown): JsonUsage;
  /** Optional: the same from the answer's text without parsing all of it; null: parse and `readWhole`. */
  readWholeText?(text: string): JsonUsage | null;
  /** A fresh reader for one streamed answer. */
  streamUsage(): StreamUsageTap;
}

/** OpenAI chat/completions/embeddings, Responses and Anthropic Messages: JSON or SSE. */
export const OPENAI_SHAPE: WireShape = {
  api: 'openai',
  streams: (body) => body.stream === true,
  streamType: 'text/event-stream',
  format: 'sse',
  readWhole: readJsonResponse,
  readWholeText: readJsonResponseText,
  streamUsage: () => new StreamUsage(),
};
