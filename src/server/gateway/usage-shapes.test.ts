import { describe, expect, it } from 'vitest';
import { readUsageObject, StreamUsage } from './usage-shapes.ts';

describe('token details that change a price', () => {
  it('reads chat/completions details', () => {
    expect(
      readUsageObject({
        prompt_tokens: 100,
        completion_tokens: 50,
        total_tokens: 150,
        prompt_tokens_details: { cached_tokens: 40 },
        completion_tokens_details: { reasoning_tokens: 20 },
      }),
    ).toEqual({ prompt: 100, completion: 50, total: 150, cached: 40, reasoning: 20 });
  });

  it('reads Responses details', () => {
    expect(
      readUsageObject({
        input_tokens: 100,
        output_tokens: 50,
        total_tokens: 150,
        input_tokens_details: { cached_tokens: 30 },
        output_tokens_details: { reasoning_tokens: 10 },
      }),
    ).toEqual({ prompt: 100, completion: 50, total: 150, cached: 30, reasoning: 10 });
  });

  it('leaves details out when not reported (an explicit 0 is kept)', () => {
    expect(readUsageObject({ prompt_tokens: 1, completion_tokens: 2 })).toEqual({
      prompt: 1,
      completion: 2,
      total: 3,
    });
    expect(
      readUsageObject({
        prompt_tokens: 1,
        completion_tokens: 2,
        prompt_tokens_details: { cached_tokens: 0 },
      }),
    ).toEqual({ prompt: 1, completion: 2, total: 3, cached: 0 });
  });

  it('keeps Anthropic cache reads and writes across a streamed message', () => {
    const stream = new StreamUsage();
    stream.observe({
      type: 'message_start',
      message: {
        model: 'claude',
        usage: {
          input_tokens: 5,
          cache_creation_input_tokens: 7,
          cache_read_input_tokens: 11,
          output_tokens: 1,
        },
      },
    });
    stream.observe({ type: 'message_delta', usage: { output_tokens: 9 } });
    expect(stream.counts).toEqual({ prompt: 23, completion: 9, total: 32, cached: 11, cacheWrite: 7 });
  });
});
