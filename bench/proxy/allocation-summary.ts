import fs from 'node:fs';
import { type CallFrame, frameName } from './call-frames.ts';

/**
 * Bytes allocated per request by call site, from a profile written by `allocations.mjs`
 * (`npm run bench proxy -- --allocations=<dir>`): garbage included, sampled every 16 KiB.
 *
 *   node --import tsx bench/proxy/allocation-summary.ts <profile.heapprofile> <requests> [rows]
 *
 * `requests`: what the process served while sampled (the measured windows' requests plus its
 * warm-up's); a call site's bytes are divided by it.
 */

interface SampleNode {
  callFrame: CallFrame;
  selfSize: number;
  children: SampleNode[];
}

const [file, requestsArg, rowsArg] = process.argv.slice(2);
const requests = Number(requestsArg);
if (!file || !(requests > 0)) {
  console.error('usage: allocation-summary.ts <profile.heapprofile> <requests> [rows]');
  process.exit(2);
}
const { head } = JSON.parse(fs.readFileSync(file, 'utf8')) as { head: SampleNode };
// A call site is the allocating function with its caller: `JSON.stringify` alone says little.
const bytes = new Map<string, number>();
let total = 0;
const walk = (node: SampleNode, caller: string) => {
  const own = frameName(node.callFrame);
  total += node.selfSize;
  if (node.selfSize > 0) {
    const site = `${own}  <  ${caller}`;
    bytes.set(site, (bytes.get(site) ?? 0) + node.selfSize);
  }
  for (const child of node.children) walk(child, own.split(' ')[0] ?? '');
};
walk(head, '');
console.log(`${Math.round(total / requests)} bytes allocated per request (${requests} requests)`);
for (const [site, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, Number(rowsArg ?? 30))) {
  console.log(`${String(Math.round(size / requests)).padStart(7)}  ${site}`);
}
