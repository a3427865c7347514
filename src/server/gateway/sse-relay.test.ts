import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OllamaStreamUsage } from './ollama-shapes.ts';
import { SseRelay, type SseRelayOptions } from './sse-relay.ts';
import type { StreamUsageTap } from './usage-shapes.ts';

const chunk = (content: string) =>
  `data: ${JSON.stringify({ model: 'm', choices: [{ delta: { content } }] })}\n\n`;
const usageChunk = `data: ${JSON.stringify({ model: 'm', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`;

function relayWith(overrides: Partial<SseRelayOptions> = {}) {
  const calls = { resume: 0, abort: 0, ended: [] as StreamUsageTap[], abandoned: [] as StreamUsageTap[] };
  const relay = new SseRelay({
    stripUsageChunk: false,
    onEnd: async (usage) => {
      calls.ended.push(usage);
    },
    onAbandon: (usage) => calls.abandoned.push(usage),
    resume: () => {
      calls.resume += 1;
    },
    abort: () => {
      calls.abort += 1;
    },
    ...overrides,
  });
  return { relay, calls };
}

/** The relay's response: a stream standing in for the client's socket. */
function attached(relay: SseRelay): PassThrough {
  const out = new PassThrough();
  relay.attach(out);
  return out;
}

async function readAll(relay: SseRelay): Promise<string> {
  let text = '';
  for await (const piece of attached(relay)) text += piece.toString();
  return text;
}

describe('SseRelay', () => {
  it('forwards whole events, reassembles split ones, reads usage, and records before the end', async () => {
    const { relay, calls } = relayWith();
    const whole = Buffer.from(chunk('Hel'));
    const split = `${chunk('lo')}${usageChunk}data: [DONE]\n\n`;
    const reading = readAll(relay);
    relay.feed(whole);
    relay.feed(Buffer.from(split.slice(0, 10)));
    relay.feed(Buffer.from(split.slice(10)));
    relay.finish();
    expect(await reading).toBe(chunk('Hel') + split);
    expect(relay.eventsForwarded).toBe(4);
    expect(calls.ended).toHaveLength(1);
    expect(calls.ended[0]?.counts).toEqual({ prompt: 3, completion: 2, total: 5 });
    expect(calls.ended[0]?.completionText).toBe('Hello');
    expect(calls.abandoned).toHaveLength(0);
  });

  it('ends events at any blank line (LF or CRLF, mixed), whatever the reads, and strips only the usage chunk', async () => {
    const terminators = ['\n\n', '\r\n\r\n', '\n\r\n', '\r\n\n'];
    const event = (data: string, terminator: string) => `data: ${data}${terminator}`;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom(...terminators)), { maxLength: 6 }),
        fc.constantFrom(...terminators),
        fc.array(fc.nat(), { maxLength: 5 }),
        async (contents, usageEnd, cuts) => {
          const { relay, calls } = relayWith({ stripUsageChunk: true });
          const kept = contents
            .map(([content, end]) =>
              event(JSON.stringify({ model: 'm', choices: [{ delta: { content } }] }), end),
            )
            .join('');
          const text = `${kept}${usageChunk.replace(/\n\n$/, usageEnd)}data: [DONE]\n\n`;
          const bytes = Buffer.from(text);
          const at = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
          const reading = readAll(relay);
          let from = 0;
          for (const cut of [...at, bytes.length]) {
            relay.feed(bytes.subarray(from, cut));
            from = cut;
          }
          relay.finish();
          expect(await reading).toBe(`${kept}data: [DONE]\n\n`);
          expect(relay.eventsForwarded).toBe(contents.length + 1);
          expect(calls.ended[0]?.counts).toEqual({ prompt: 3, completion: 2, total: 5 });
          expect(calls.ended[0]?.completionText).toBe(contents.map(([content]) => content).join(''));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('sends a character split across reads once, after whole events', async () => {
    const { relay } = relayWith();
    const reading = readAll(relay);
    const second = Buffer.from('é\n\n');
    relay.feed(Buffer.concat([Buffer.from(chunk('a')), second.subarray(0, 1)]));
    relay.feed(second.subarray(1));
    relay.finish();
    expect(await reading).toBe(`${chunk('a')}é\n\n`);
  });

  it('drops the usage-only chunk it asked for, and only that', async () => {
    const { relay, calls } = relayWith({ stripUsageChunk: true });
    const reading = readAll(relay);
    relay.feed(Buffer.from(`${chunk('a')}${usageChunk}data: [DONE]\n\n`));
    relay.finish();
    expect(await reading).toBe(`${chunk('a')}data: [DONE]\n\n`);
    expect(calls.ended[0]?.counts?.total).toBe(5);
  });

  it('says when the client is behind, and resumes the upstream when it reads again', async () => {
    const { relay, calls } = relayWith();
    const big = Buffer.from(chunk('x'.repeat(20_000)));
    expect(relay.feed(big)).toBe(false);
    const reading = readAll(relay);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.resume).toBeGreaterThan(0);
    relay.finish();
    expect((await reading).length).toBe(big.length);
  });

  it('attached: says when the response is full, and resumes the upstream once it drains', async () => {
    const { relay, calls } = relayWith();
    const out = new PassThrough({ highWaterMark: 1024 });
    relay.attach(out);
    expect(relay.feed(Buffer.from(chunk('x'.repeat(2_000))))).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.resume).toBe(0);
    const received: Buffer[] = [];
    out.on('data', (piece: Buffer) => received.push(piece));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.resume).toBe(1);
    expect(relay.feed(Buffer.from(chunk('y')))).toBe(true);
    expect(Buffer.concat(received).toString()).toBe(chunk('x'.repeat(2_000)) + chunk('y'));
  });

  it('its response closed before its end (the client left): aborts the upstream and records what it relayed, once', async () => {
    const { relay, calls } = relayWith();
    const out = attached(relay);
    relay.feed(Buffer.from(chunk('one') + chunk('two')));
    out.destroy();
    out.destroy();
    relay.fail();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.abort).toBe(1);
    expect(calls.abandoned).toHaveLength(1);
    expect(calls.abandoned[0]?.completionText).toBe('onetwo');
    expect(calls.ended).toHaveLength(0);
  });

  it('the upstream broke mid-stream: the response is cut, not ended, and what was relayed is recorded once', async () => {
    const { relay, calls } = relayWith();
    const out = attached(relay);
    const received: string[] = [];
    out.on('data', (piece: Buffer) => received.push(piece.toString()));
    relay.feed(Buffer.from(chunk('one')));
    relay.fail();
    relay.finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(received.join('')).toBe(chunk('one'));
    expect(out.destroyed).toBe(true);
    expect(out.writableEnded).toBe(false);
    expect(calls.abort).toBe(1);
    expect(calls.abandoned).toHaveLength(1);
    expect(calls.ended).toHaveLength(0);
  });

  it('fed and finished before its response is attached: all of it is written, then the end', async () => {
    const { relay, calls } = relayWith();
    relay.feed(Buffer.from(chunk('early') + usageChunk));
    relay.finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await readAll(relay)).toBe(chunk('early') + usageChunk);
    expect(calls.ended).toHaveLength(1);
  });

  it('its row could not be journaled: the response is cut instead of ended', async () => {
    const { relay } = relayWith({
      onEnd: async () => {
        throw new Error('usage journal unwritable');
      },
    });
    const out = attached(relay);
    out.resume();
    relay.feed(Buffer.from(chunk('lost')));
    relay.finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.destroyed).toBe(true);
    expect(out.writableEnded).toBe(false);
  });

  it('its response closed after the upstream finished: the complete row is recorded, no aborted one', async () => {
    const { relay, calls } = relayWith();
    const out = attached(relay);
    relay.feed(Buffer.from(chunk('done')));
    relay.finish();
    out.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.ended).toHaveLength(1);
    expect(calls.abandoned).toHaveLength(0);
    expect(calls.abort).toBe(0);
  });

  it('NDJSON (Ollama): lines split across reads pass unchanged; the done line gives the counts', async () => {
    const { relay, calls } = relayWith({ format: 'ndjson', usage: new OllamaStreamUsage() });
    const line = (payload: unknown) => `${JSON.stringify(payload)}\n`;
    const text =
      line({ model: 'llama', message: { role: 'assistant', content: 'Hel' }, done: false }) +
      line({ model: 'llama', message: { role: 'assistant', content: 'lo' }, done: false }) +
      line({ model: 'llama', message: { content: '' }, done: true, prompt_eval_count: 7, eval_count: 2 });
    const reading = readAll(relay);
    relay.feed(Buffer.from(text.slice(0, 30)));
    relay.feed(Buffer.from(text.slice(30)));
    relay.finish();
    expect(await reading).toBe(text);
    expect(relay.eventsForwarded).toBe(3);
    expect(calls.ended[0]?.counts).toEqual({ prompt: 7, completion: 2, total: 9 });
    expect(calls.ended[0]?.completionText).toBe('Hello');
    expect(calls.ended[0]?.model).toBe('llama');
  });

  it('NDJSON cut before its done line: abandoned with the text so far and no counts', async () => {
    const { relay, calls } = relayWith({ format: 'ndjson', usage: new OllamaStreamUsage() });
    const out = attached(relay);
    relay.feed(Buffer.from(`${JSON.stringify({ response: 'one', done: false })}\n{"respo`));
    out.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.abandoned[0]?.counts).toBeNull();
    expect(calls.abandoned[0]?.completionText).toBe('one');
  });
});
