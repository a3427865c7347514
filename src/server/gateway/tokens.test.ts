import fc from 'fast-check';
import { encode } from 'gpt-tokenizer';
import { describe, expect, it } from 'vitest';
import { countTextTokens, o200kRanks } from './tokens.ts';

/**
 * keytally builds its o200k encoder from gpt-tokenizer's `.tiktoken` data file (less memory than
 * its JavaScript table): the counts must be gpt-tokenizer's own, token for token.
 */
const own = (text: string) => encode(text, { disallowedSpecial: new Set() }).length;

describe('countTextTokens', () => {
  it('reads the same o200k table as gpt-tokenizer ships as JavaScript', async () => {
    const { default: shipped } = await import('gpt-tokenizer/bpeRanks/o200k_base');
    const ranks = o200kRanks();
    expect(ranks.length).toBe(shipped.length);
    expect(ranks).toEqual(shipped);
  });

  it('counts exactly as gpt-tokenizer does, byte-level tokens and a leading BOM included', async () => {
    const texts = [
      'Say hello to the benchmark.',
      '\uFEFFusing namespace std;\n\n',
      'Zoë — 東京 🚀 مرحبا שלום Ünïcödé',
      'special tokens as text: <|endoftext|> <|im_start|>',
      '    indented\n\t\ttabs\r\n',
      '\u0000\u0001 lone \uD800 surrogate',
    ];
    for (const text of texts) expect(await countTextTokens(text)).toBe(own(text));
  });

  it('counts random text exactly as gpt-tokenizer does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 200 }), async (text) => {
        expect(await countTextTokens(text)).toBe(own(text));
      }),
      { numRuns: 300 },
    );
  });
});
