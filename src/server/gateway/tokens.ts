// Client text may contain special-token strings ("<|endoftext|>"); they are counted as plain text,
// which is what a model sees when a client sends them as message content.
const NO_SPECIAL = { disallowedSpecial: new Set<string>() };

type Encode = (text: string, options: { disallowedSpecial: Set<string> }) => number[];
let encoder: Promise<Encode> | undefined;

/**
 * The o200k BPE tables cost ~68 MB of memory once loaded, so they are loaded on first use only (an
 * upstream that reports no usage, an interrupted stream, the demo model). A deployment whose
 * upstreams always report usage never pays for them.
 */
function loadEncoder(): Promise<Encode> {
  encoder ??= import('gpt-tokenizer').then((module) => module.encode as Encode);
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
