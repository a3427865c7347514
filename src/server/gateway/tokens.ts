import fs from 'node:fs';
import { createRequire } from 'node:module';

// Client text may contain special-token strings ("<|endoftext|>"); they are counted as plain text,
// which is what a model sees when a client sends them as message content.
const NO_SPECIAL = { disallowedSpecial: new Set<string>() };

type Count = (text: string, options: { disallowedSpecial: Set<string> }) => number;
let encoder: Promise<Count> | undefined;

// Large prompts are counted in slices with a turn of the event loop between them: a 20 MB prompt
// counted in one call stalled every other request for 300-540 ms. One 8 KiB slice is ~1-3 ms.
const SLICE_CHARS = 8192;
// BPE cost grows with the square of a piece's length: one 70,000-character word took over 30 s. A
// run without whitespace is counted in pieces of this many characters (about one token more per cut,
// an estimate either way).
const RUN_CHARS = 256;
const LONG_RUN = new RegExp(`\\S{${RUN_CHARS},}`);
/** The counter once loaded: synchronous counts from then on (limits' admission uses them). */
let loadedCount: Count | undefined;

/**
 * The o200k BPE ranks, read from gpt-tokenizer's `data/o200k_base.tiktoken` (a `base64 rank` line a
 * token) instead of imported from its 2.4 MB JavaScript array literal, whose parse leaves much more
 * memory behind: keytally's RSS grows by 30-33 MB at its first estimate this way, by 36-55 MB (peak
 * 150-160 MB) with the import; the first estimate waits ~0.15 s longer, once. Same ranks: a token
 * that is valid UTF-8 as a string, any other as its bytes, as gpt-tokenizer's own table has them
 * (tested against it).
 */
export function o200kRanks(): (string | number[])[] {
  const file = createRequire(import.meta.url).resolve('gpt-tokenizer/data/o200k_base.tiktoken');
  const text = fs.readFileSync(file, 'latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const ranks: (string | number[])[] = [];
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const space = text.indexOf(' ', start);
    if (space > start && space < end) {
      const bytes = Buffer.from(text.slice(start, space), 'base64');
      let token: string | number[] = [...bytes];
      // gpt-tokenizer's table keeps the tokens that begin with a BOM as bytes.
      if (!(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)) {
        try {
          token = utf8.decode(bytes);
        } catch {
          // Not UTF-8 on its own (part of a character): stays bytes.
        }
      }
      ranks[Number(text.slice(space + 1, end))] = token;
    }
    start = end + 1;
  }
  return ranks;
}

/**
 * The o200k encoder costs ~30 MB of memory once loaded, so it is loaded on first use only (an
 * upstream that reports no usage, an interrupted stream, the demo model). A deployment whose
 * upstreams always report usage never pays for it.
 */
function loadEncoder(): Promise<Count> {
  encoder ??= import('gpt-tokenizer/GptEncoding').then(({ GptEncoding }) => {
    // countTokens: no array of token ids (5 M numbers for a 20 MB prompt).
    loadedCount = GptEncoding.getEncodingApi('o200k_base', o200kRanks).countTokens as Count;
    return loadedCount;
  });
  return encoder;
}

const isWhitespace = (code: number) => code === 32 || code === 10 || code === 13 || code === 9;
const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/**
 * The slices of `text` counted one by one: up to SLICE_CHARS of ordinary text, cut before a space
 * (o200k's pieces start with their space, so the sum is the same as one pass), and runs without
 * whitespace of RUN_CHARS or more in RUN_CHARS pieces. A surrogate pair is never cut. Each step looks
 * at one window of SLICE_CHARS only (a regex over the whole 20 MB stalled the loop ~50 ms).
 */
function* slicesOf(text: string): Generator<string> {
  let position = 0;
  while (position < text.length) {
    let cut = Math.min(text.length, position + SLICE_CHARS);
    const run = LONG_RUN.exec(text.slice(position, cut));
    if (run && run.index > 0) {
      cut = position + run.index;
    } else if (run) {
      cut = position + RUN_CHARS;
      if (isHighSurrogate(text.charCodeAt(cut - 1))) cut -= 1;
    } else if (cut < text.length) {
      let space = cut;
      while (space > position && !isWhitespace(text.charCodeAt(space))) space -= 1;
      if (space > position) cut = space;
      else if (isHighSurrogate(text.charCodeAt(cut - 1))) cut -= 1;
    }
    yield text.slice(position, cut);
    position = cut;
  }
}

/**
 * Tokens of `text` with the o200k BPE (gpt-tokenizer's default encoding). Text longer than one
 * slice is counted slice by slice, yielding to the event loop between slices, so memory stays at one
 * slice's worth and other requests keep being served.
 */
export async function countTextTokens(text: string): Promise<number> {
  if (text.length === 0) return 0;
  const count = await loadEncoder();
  if (text.length <= SLICE_CHARS && text.length < RUN_CHARS) return count(text, NO_SPECIAL);
  let total = 0;
  let sinceYield = 0;
  for (const slice of slicesOf(text)) {
    total += count(slice, NO_SPECIAL);
    sinceYield += slice.length;
    if (sinceYield >= SLICE_CHARS) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return total;
}

const PROMPT_FIELDS = ['system', 'instructions', 'messages', 'prompt', 'input'] as const;

/**
 * Calls `visit` on every prompt text inside `value` and sums what it returns: strings, arrays of
 * them, and content parts ({type:'text', text} of OpenAI/Anthropic, {type:'input_text', text} of
 * Responses) with their nested `content`. The one walk promptTexts and promptBytes share.
 */
function visitTexts(value: unknown, visit: (text: string) => number): number {
  if (typeof value === 'string') return visit(value);
  let sum = 0;
  if (Array.isArray(value)) {
    for (const item of value) sum += visitTexts(item, visit);
  } else if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record.text === 'string') sum += visit(record.text);
    if (record.content !== undefined) sum += visitTexts(record.content, visit);
  }
  return sum;
}

function visitPromptTexts(body: Record<string, unknown>, visit: (text: string) => number): number {
  let sum = 0;
  for (const field of PROMPT_FIELDS) {
    if (body[field] !== undefined) sum += visitTexts(body[field], visit);
  }
  return sum;
}

/**
 * The prompt text of a request body in any of the supported shapes: chat `messages`, completions
 * `prompt`, embeddings/Responses `input`, Anthropic `system` + `messages`, Responses `instructions`.
 * Each piece is counted separately (no chat-template overhead), so the estimate is the tokens of the
 * text the user wrote.
 */
export function promptTexts(body: Record<string, unknown>): string[] {
  const out: string[] = [];
  visitPromptTexts(body, (text) => {
    out.push(text);
    return 0;
  });
  return out;
}

export async function estimatePromptTokens(body: Record<string, unknown>): Promise<number> {
  let total = 0;
  for (const text of promptTexts(body)) total += await countTextTokens(text);
  return total;
}

/**
 * The prompt's UTF-8 bytes: an upper bound of its tokens (every o200k token is at least one byte),
 * for the price of walking the body. Limits reserve with it while a limit has room to spare.
 */
export function promptBytes(body: Record<string, unknown>): number {
  // No text collected, no closure: a request-path call.
  return visitPromptTexts(body, utf8Bytes);
}

const utf8Bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** True once the encoder is loaded (promptTokensNow counts exactly from then on). */
export const tokenizerLoaded = (): boolean => loadedCount !== undefined;

/** Loads the encoder (once) and resolves when promptTokensNow counts exactly. */
export async function loadTokenizer(): Promise<void> {
  await loadEncoder();
}

/**
 * The prompt's tokens now, without waiting: exact once the encoder is loaded; until then (its first
 * load takes ~0.5-2 s) its UTF-8 byte count, an upper bound (every o200k token is at least one byte),
 * and the load is started. Limits reserve with it, so a reservation is never below the real count.
 */
export function promptTokensNow(body: Record<string, unknown>): { tokens: number; exact: boolean } {
  const texts = promptTexts(body);
  let bytes = 0;
  for (const text of texts) bytes += Buffer.byteLength(text, 'utf8');
  // A large prompt would stall the event loop if counted here in one go (see SLICE_CHARS): its byte
  // count bounds it instead, and the row settles to the real count.
  // So would a long run without whitespace (BPE's cost grows with the square of its length).
  if (loadedCount && bytes <= EXACT_NOW_BYTES_MAX && !texts.some((text) => LONG_RUN.test(text))) {
    let total = 0;
    for (const text of texts) total += cachedCount(loadedCount, text);
    return { tokens: total, exact: true };
  }
  if (!loadedCount) loadEncoder().catch(() => {});
  return { tokens: bytes, exact: false };
}

// Chat clients resend the system prompt and the whole conversation with every turn, so most texts
// of a request were counted before: a bounded map of recent texts (up to 8 KB each) spares the BPE.
const COUNT_CACHE_MAX = 2000;
const CACHED_TEXT_MAX = 8192;
const counts = new Map<string, number>();

// Up to this many bytes a prompt is counted exactly at admission (~1-3 ms of BPE at most, and
// usually a cache hit).
const EXACT_NOW_BYTES_MAX = 16_384;

function cachedCount(count: Count, text: string): number {
  if (text.length === 0) return 0;
  if (text.length > CACHED_TEXT_MAX) return count(text, NO_SPECIAL);
  let cached = counts.get(text);
  if (cached === undefined) {
    cached = count(text, NO_SPECIAL);
    if (counts.size >= COUNT_CACHE_MAX) counts.clear();
    counts.set(text, cached);
  }
  return cached;
}
