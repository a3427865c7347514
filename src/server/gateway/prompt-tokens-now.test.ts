import { encode } from 'gpt-tokenizer';
import { describe, expect, it } from 'vitest';
import { countTextTokens, promptBytes, promptTexts, promptTokensNow } from './tokens.ts';

describe('promptTokensNow (limits: admission without waiting for the tokenizer)', () => {
  const body = {
    model: 'm',
    system: 'Ünïcödé system prompt',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'count these words please' }] }],
  };
  const exact = ['Ünïcödé system prompt', 'count these words please']
    .map((text) => encode(text, { disallowedSpecial: new Set() }).length)
    .reduce((a, b) => a + b, 0);

  it('bounds the count by the UTF-8 bytes until the encoder is loaded, then counts exactly (cached or not)', async () => {
    const before = promptTokensNow(body);
    expect(before.exact).toBe(false);
    expect(before.tokens).toBe(
      Buffer.byteLength('Ünïcödé system prompt') + Buffer.byteLength('count these words please'),
    );
    expect(before.tokens).toBeGreaterThanOrEqual(exact);
    await countTextTokens('load');
    expect(promptTokensNow(body)).toEqual({ tokens: exact, exact: true });
    expect(promptTokensNow(body)).toEqual({ tokens: exact, exact: true });
    const long = 'word '.repeat(3000);
    expect(promptTokensNow({ prompt: long }).tokens).toBe(
      encode(long, { disallowedSpecial: new Set() }).length,
    );
    // Too large, or one long run without whitespace, to count on the request path: bounded by bytes.
    expect(promptTokensNow({ prompt: 'word '.repeat(4000) })).toEqual({ tokens: 20_000, exact: false });
    expect(promptTokensNow({ prompt: 'x'.repeat(300) })).toEqual({ tokens: 300, exact: false });
  });

  it('promptBytes is the UTF-8 byte count of every prompt text, in every body shape', () => {
    const bodies = [
      body,
      { model: 'm', prompt: ['héllo', 'wörld'] },
      { model: 'm', input: [{ type: 'input_text', text: 'ünïcode' }], instructions: 'be brief' },
      { model: 'm', system: [{ type: 'text', text: 'sys' }], messages: [{ role: 'user', content: 'hi' }] },
      { model: 'm' },
    ];
    for (const each of bodies) {
      const expected = promptTexts(each).reduce((sum, text) => sum + Buffer.byteLength(text), 0);
      expect(promptBytes(each)).toBe(expected);
    }
    expect(promptBytes(body)).toBe(
      Buffer.byteLength('Ünïcödé system prompt') + Buffer.byteLength('count these words please'),
    );
  });
});
