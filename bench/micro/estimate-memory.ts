// RSS and event-loop stalls while a 20 MB prompt is estimated (issue 11, item 7).
// Run: npx tsx bench/micro/estimate-memory.ts [sliced|whole]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { countTextTokens } from '../../src/server/gateway/tokens.ts';

const mode = process.argv[2] ?? 'sliced';
const words = 'the quick brown fox jumps over the lazy dog, then 12345 more; ';
const prompt = words.repeat(Math.ceil(20_000_000 / words.length));
await countTextTokens('load the encoder');
const mb = (bytes: number) => Math.round(bytes / 1048576);
const before = process.memoryUsage().rss;
let peak = before;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 5);
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const started = performance.now();
let tokens: number;
if (mode === 'whole') {
  const { encode } = await import('gpt-tokenizer');
  tokens = encode(prompt, { disallowedSpecial: new Set() }).length;
} else {
  tokens = await countTextTokens(prompt);
}
const ms = performance.now() - started;
delay.disable();
peak = Math.max(peak, process.memoryUsage().rss);
clearInterval(sampler);
console.log(
  `${mode}: ${tokens} tokens in ${Math.round(ms)} ms; RSS ${mb(before)} -> peak ${mb(peak)} MB; longest event-loop stall ${Math.round(delay.max / 1e6)} ms`,
);
