import { describe, expect, it } from 'vitest';
import { collectStringValues, firstStringValue, hasNonNullKey, topLevelMembers } from './event-scan.ts';
import { readJsonResponse, readJsonResponseText, StreamUsage } from './usage-shapes.ts';

/** The events of one stream through the relay's path: `scan` when it can, else parse + `observe`. */
function tapped(events: string[]): StreamUsage {
  const usage = new StreamUsage();
  for (const data of events) {
    if (usage.scan(data)) continue;
    try {
      usage.observe(JSON.parse(data));
    } catch {}
  }
  return usage;
}

/** The same events, each parsed: what the tap read before the fast path. */
function parsed(events: string[]): StreamUsage {
  const usage = new StreamUsage();
  for (const data of events) {
    try {
      usage.observe(JSON.parse(data));
    } catch {}
  }
  return usage;
}

const chat = (delta: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    id: 'c',
    object: 'chat.completion.chunk',
    model: 'm-1',
    choices: [{ index: 0, delta }],
    ...extra,
  });

describe('the stream tap without a parse per event', () => {
  const streams: Record<string, string[]> = {
    'plain content': [
      chat({ role: 'assistant', content: '' }),
      chat({ content: 'Hel' }),
      chat({ content: 'lo' }),
    ],
    'escapes and quotes in the text': [chat({ content: 'say "hi"\n\\o/' }), chat({ content: 'tab\there' })],
    'non-ASCII text, raw and \\u-escaped': [
      chat({ content: 'héllo ✓' }),
      '{"model":"m","choices":[{"delta":{"content":"\\u00e9t\\u00e9"}}]}',
    ],
    'text that spells a key': [chat({ content: '"usage":{"prompt_tokens":9} "type":"x" "model":"evil"' })],
    'usage: null in every chunk (OpenAI with include_usage)': [
      chat({ content: 'a' }, { usage: null }),
      JSON.stringify({
        model: 'm-1',
        choices: [],
        usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
      }),
    ],
    'reasoning and a completion text': [
      chat({ reasoning_content: 'think' }),
      JSON.stringify({ model: 'm', choices: [{ index: 0, text: 'done', logprobs: null }] }),
    ],
    'blanks around colons (Python json.dumps)': [
      '{"model": "m-2", "choices": [{"delta": {"content": "spaced"}}], "usage": null}',
    ],
    'tool calls and log-probabilities (parsed)': [
      chat({ tool_calls: [{ index: 0, type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }),
      chat(
        { content: 'x' },
        { choices: [{ delta: { content: 'y' }, logprobs: { content: [{ token: 'y' }] } }] },
      ),
    ],
    'Responses and Anthropic events (parsed)': [
      JSON.stringify({ type: 'response.output_text.delta', delta: 'r' }),
      JSON.stringify({ type: 'message_start', message: { model: 'claude', usage: { input_tokens: 5 } } }),
      JSON.stringify({ type: 'content_block_delta', delta: { type: 'text_delta', text: 't' } }),
    ],
    'a truncated event, trailing blanks': [
      '{"model":"m","choices":[{"delta":{"content":"ok"}}]}  ',
      '{"model":"m","choices":[{"delta":{"content":"cut',
    ],
    'an empty model keeps the previous one': [chat({ content: 'a' }), chat({ content: 'b' }, { model: '' })],
    'kept events around a parsed one keep their order': [
      chat({ content: 'a' }),
      '{"model":"m-2","choices":[{"delta":{"content":"\\u00e9"}}]}',
      chat({ content: 'b' }),
    ],
    'a model named after the usage chunk wins': [
      chat({ content: 'a' }),
      JSON.stringify({
        model: 'm-usage',
        choices: [],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      }),
      chat({ content: 'z' }, { model: 'm-late' }),
      JSON.stringify({ type: 'message_stop' }),
    ],
    'the usage chunk names the last model': [
      chat({ content: 'a' }, { model: 'm-early' }),
      JSON.stringify({
        model: 'm-usage',
        choices: [],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      }),
      JSON.stringify({ type: 'message_stop' }),
    ],
    'a stream longer than what is kept unread': Array.from({ length: 3000 }, (_, i) =>
      i % 700 === 350
        ? `{"model":"m-${i}","choices":[{"delta":{"content":"\\u00e9${i}"}}]}`
        : chat({ content: `word ${i} ` }, { model: `m-${Math.floor(i / 1000)}` }),
    ),
  };
  for (const [name, events] of Object.entries(streams)) {
    it(`reads what a full parse reads: ${name}`, () => {
      const fast = tapped(events);
      const slow = parsed(events);
      expect(fast.model).toBe(slow.model);
      expect(fast.counts).toEqual(slow.counts);
      expect(fast.completionText).toBe(slow.completionText);
    });
  }

  it('holds at most 64 KiB of events unread: past that, what it kept is read', () => {
    const usage = new StreamUsage();
    const held = () => usage as unknown as { keptChars: number; keptAt: number[] };
    for (let i = 0; i < 3000; i++) {
      expect(usage.scan(chat({ content: `word ${i} ` }))).toBe(true);
      expect(held().keptChars).toBeLessThanOrEqual(64 * 1024);
    }
    // The bound was reached (more than 64 KiB went through), and what is still kept is under it.
    expect(held().keptAt.length).toBeLessThan(3000);
    expect(usage.completionText).toBe(Array.from({ length: 3000 }, (_, i) => `word ${i} `).join(''));
    expect(held().keptChars).toBe(0);
  });

  it('keeps events without usage unread, and leaves usage (or a \\u escape that could spell it) to the parse', () => {
    const usage = new StreamUsage();
    expect(usage.scan(chat({ content: 'a' }))).toBe(true);
    expect(usage.scan(chat({ content: 'a' }, { usage: null }))).toBe(true);
    expect(usage.scan(JSON.stringify({ type: 'message_stop' }))).toBe(true);
    expect(usage.scan(chat({ tool_calls: [] }))).toBe(true);
    expect(usage.scan('[1,2]')).toBe(true);
    expect(usage.scan(JSON.stringify({ choices: [], usage: { total_tokens: 1 } }))).toBe(false);
    expect(usage.scan('{"\\u0075sage":{"total_tokens":1}}')).toBe(false);
  });
});

describe('event-scan', () => {
  it('finds keys, not text that looks like them', () => {
    expect(hasNonNullKey('{"usage":null}', 'usage')).toBe(false);
    expect(hasNonNullKey('{"usage" : {"a":1}}', 'usage')).toBe(true);
    expect(hasNonNullKey('{"x":"\\"usage\\":1"}', 'usage')).toBe(false);
    expect(firstStringValue('{"model" :\t"m"}', 'model')).toBe('m');
    expect(firstStringValue('{"model":null}', 'model')).toBeUndefined();
    const out: string[] = [];
    expect(
      collectStringValues('{"a":[{"content":"x\\\\"},{"content":"y"},{"content":1}]}', 'content', out),
    ).toBe(true);
    expect(out).toEqual(['x\\', 'y']);
    expect(collectStringValues('{"content":"open', 'content', [])).toBe(false);
  });
});

describe('a whole answer read from its text', () => {
  const usage = {
    prompt_tokens: 7,
    completion_tokens: 3,
    total_tokens: 10,
    prompt_tokens_details: { cached_tokens: 2 },
  };
  const bodies: Record<string, string> = {
    chat: JSON.stringify({
      id: 'x',
      model: 'm-1',
      choices: [{ message: { role: 'assistant', content: 'hi "there"' } }],
      usage,
    }),
    'blanks and newlines': JSON.stringify({ model: 'm-2', usage, choices: [] }, null, 2),
    embeddings: JSON.stringify({
      object: 'list',
      data: [{ embedding: [0.1, 0.2] }],
      model: 'e',
      usage: { prompt_tokens: 4, total_tokens: 4 },
    }),
    responses: JSON.stringify({
      model: 'r',
      output: [{ content: [{ text: 'x' }] }],
      usage: { input_tokens: 5, output_tokens: 2, output_tokens_details: { reasoning_tokens: 1 } },
    }),
    anthropic: JSON.stringify({
      model: 'claude',
      content: [{ type: 'text', text: 'y' }],
      usage: { input_tokens: 5, output_tokens: 2, cache_read_input_tokens: 3 },
    }),
    'a usage key nested deeper than the top': JSON.stringify({
      model: 'm',
      choices: [{ message: { content: 'x', usage: { prompt_tokens: 99 } } }],
      usage,
    }),
    'a repeated top-level usage (the last wins)':
      '{"model":"m","usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2,"completion_tokens":1}}',
  };
  for (const [name, text] of Object.entries(bodies)) {
    it(`reads what a full parse reads: ${name}`, () => {
      expect(readJsonResponseText(text)).toEqual({
        ...readJsonResponse(JSON.parse(text)),
        completionText: '',
      });
    });
  }

  it('leaves the whole parse to answers without usage, with null usage, escaped keys or that are not one object', () => {
    for (const text of [
      JSON.stringify({ model: 'm', choices: [{ message: { content: 'x' } }] }),
      JSON.stringify({ model: 'm', usage: null }),
      JSON.stringify({ model: 'm', usage: {} }),
      '{"\\u0075sage":{"prompt_tokens":1}}',
      '{"usage":{"prompt_tokens":1}',
      '{"usage":{"prompt_tokens":1}} trailing',
      '[{"usage":{"prompt_tokens":1}}]',
      '',
    ]) {
      expect(readJsonResponseText(text)).toBeNull();
    }
  });

  it('takes members at the top level only', () => {
    expect(topLevelMembers('{"a":{"b":1,"c":[1,{"d":2}]},"b":"x,}"}', ['a', 'b'])).toEqual(
      new Map([
        ['a', '{"b":1,"c":[1,{"d":2}]}'],
        ['b', '"x,}"'],
      ]),
    );
  });
});
