import fs from 'node:fs';
import { createRequire } from 'node:module';

// Client text may contain special-token strings ("<|endoftext|>"); they are counted as plain text,
// which is what a model sees when a client sends them as message content.
const NO_SPECIAL = { disallowedSpecial: new Set<string>() };

type Encode = (text: string, options: { disallowedSpecial: Set<string> }) => number[];
let encoder: Promise<Encode> | undefined;
/** The encoder once loaded: synchronous counts from then on (limits' admission uses them). */
let loadedEncoder: Encode | undefined;

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
function loadEncoder(): Promise<Encode> {
  encoder ??= import('gpt-tokenizer/GptEncoding').then(({ GptEncoding }) => {
    loadedEncoder = GptEncoding.getEncodingApi('o200k_base', o200kRanks).encode as Encode;
    return loadedEncoder;
  });
  return encoder;
}

/** Tokens of `text` with the o200k BPE (gpt-tokenizer's default encoding). */
export async function countTextTokens(text: string): Promise<number> {
  if (text.length === 0) return 0;
  const encode = await loadEncoder();
  return encode(text, NO_SPECIAL).length;
}

function collectText(value: unknown, out: string[]): void {
  if (typeof value === 'string') {
    out.push(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collectText(item, out);
    return;
  }
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    // Content parts: {type:'text', text} (OpenAI/Anthropic) and {type:'input_text', text} (Responses).
    if (typeof record.text === 'string') out.push(record.text);
    if (record.content !== undefined) collectText(record.content, out);
  }
}

/**
 * The prompt text of a request body in any of the supported shapes: chat `messages`, completions
 * `prompt`, embeddings/Responses `input`, Anthropic `system` + `messages`, Responses `instructions`.
 * Each piece is counted separately (no chat-template overhead), so the estimate is the tokens of the
 * text the user wrote.
 */
export function promptTexts(body: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const field of ['system', 'instructions', 'messages', 'prompt', 'input']) {
    if (body[field] !== undefined) collectText(body[field], out);
  }
  return out;
}

export async function estimatePromptTokens(body: Record<string, unknown>): Promise<number> {
  let total = 0;
  for (const text of promptTexts(body)) total += await countTextTokens(text);
  return total;
}

/**
 * The prompt's tokens now, without waiting: exact once the encoder is loaded; until then (its first
 * load takes ~0.5-2 s) its UTF-8 byte count, an upper bound (every o200k token is at least one byte),
 * and the load is started. Limits reserve with it, so a reservation is never below the real count.
 */
export function promptTokensNow(body: Record<string, unknown>): { tokens: number; exact: boolean } {
  const texts = promptTexts(body);
  if (loadedEncoder) {
    let total = 0;
    for (const text of texts) total += cachedCount(loadedEncoder, text);
    return { tokens: total, exact: true };
  }
  loadEncoder().catch(() => {});
  let bytes = 0;
  for (const text of texts) bytes += Buffer.byteLength(text, 'utf8');
  return { tokens: bytes, exact: false };
}

// Chat clients resend the system prompt and the whole conversation with every turn, so most texts
// of a request were counted before: a bounded map of recent texts (up to 8 KB each) spares the BPE.
const COUNT_CACHE_MAX = 2000;
const CACHED_TEXT_MAX = 8192;
const counts = new Map<string, number>();

function cachedCount(encode: Encode, text: string): number {
  if (text.length === 0) return 0;
  if (text.length > CACHED_TEXT_MAX) return encode(text, NO_SPECIAL).length;
  let count = counts.get(text);
  if (count === undefined) {
    count = encode(text, NO_SPECIAL).length;
    if (counts.size >= COUNT_CACHE_MAX) counts.clear();
    counts.set(text, count);
  }
  return count;
}
