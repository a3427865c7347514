// The per-request cost of the inference depth check (issue 11, item 3), next to the JSON.stringify every
// forwarded body already pays. Run: npx tsx bench/micro/json-depth.ts
import { exceedsJsonDepth } from '../../src/server/gateway/json-depth.ts';

const small = JSON.parse(
  JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'Hello' }], stream: true }),
);
const medium = JSON.parse(
  JSON.stringify({
    model: 'm',
    messages: Array.from({ length: 20 }, (_, i) => ({
      role: i % 2 ? 'assistant' : 'user',
      content: [{ type: 'text', text: 'x'.repeat(500) }],
    })),
    tools: Array.from({ length: 5 }, () => ({
      type: 'function',
      function: {
        name: 'f',
        parameters: {
          type: 'object',
          properties: { a: { type: 'string' }, b: { type: 'array', items: { type: 'number' } } },
        },
      },
    })),
  }),
);
for (const [name, body] of [
  ['small', small],
  ['medium (20 messages, 5 tools)', medium],
] as const) {
  for (let i = 0; i < 10000; i++) exceedsJsonDepth(body);
  const n = 200000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) exceedsJsonDepth(body);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < n / 10; i++) JSON.stringify(body);
  const sns = Number(process.hrtime.bigint() - t1) / (n / 10);
  console.log(
    `${name}: depth check ${ns.toFixed(0)} ns/request; JSON.stringify of the same body ${sns.toFixed(0)} ns`,
  );
}
