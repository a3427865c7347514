import fs from 'node:fs';
import { type CallFrame, frameName } from './call-frames.ts';
import type { Measurement } from './measure.ts';

/**
 * Where two kinds of window of one process differ, per request: a `--cpu-prof` profile's samples
 * attributed to the bench's windows by their times (both on the system's monotonic clock), then
 * self time per function per request of each kind, largest differences first.
 *
 *   node --import tsx bench/proxy/split-profile.ts <results.json> <profile.cpuprofile> <kind A> <kind B> [rows]
 *
 * A kind is a measurement's `target` (e.g. `keytally-sqlite-limits` against
 * `keytally-sqlite-limits:unlimited-key`, the two keys of `--limits-process=same`).
 */

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [resultsFile, profileFile, kindA, kindB, rowsArg] = process.argv.slice(2);
if (!resultsFile || !profileFile || !kindA || !kindB) {
  console.error('usage: split-profile.ts <results.json> <profile.cpuprofile> <kind A> <kind B> [rows]');
  process.exit(2);
}
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as {
  measurements: Measurement[];
  limitsPairs?: { pairs: { off: Measurement; on: Measurement }[] };
};
const windows = [
  ...results.measurements,
  ...(results.limitsPairs?.pairs ?? []).flatMap((pair) => [pair.off, pair.on]),
].filter((m) => (m.target === kindA || m.target === kindB) && m.monotonicUs && m.requests);
const profile = JSON.parse(fs.readFileSync(profileFile, 'utf8')) as Profile;
const names = new Map<number, string>();
for (const node of profile.nodes) {
  names.set(node.id, frameName(node.callFrame));
}

// Each sample's time, then the window (if any) it falls in.
const selfByKind = new Map<string, Map<string, number>>([
  [kindA, new Map()],
  [kindB, new Map()],
]);
const busyByKind = new Map<string, number>([
  [kindA, 0],
  [kindB, 0],
]);
const sorted = [...windows].sort((a, b) => (a.monotonicUs?.[0] ?? 0) - (b.monotonicUs?.[0] ?? 0));
let time = profile.startTime;
let cursor = 0;
let matched = 0;
for (let i = 0; i < profile.samples.length; i++) {
  time += profile.timeDeltas[i] ?? 0;
  while (cursor < sorted.length && (sorted[cursor]?.monotonicUs?.[1] ?? 0) < time) cursor++;
  const window = sorted[cursor];
  if (!window?.monotonicUs || time < window.monotonicUs[0]) continue;
  const name = names.get(profile.samples[i] ?? -1) ?? '?';
  if (name.startsWith('(idle)')) continue;
  matched++;
  const self = selfByKind.get(window.target) as Map<string, number>;
  self.set(name, (self.get(name) ?? 0) + 1);
  busyByKind.set(window.target, (busyByKind.get(window.target) ?? 0) + 1);
}
const requests = (kind: string) =>
  windows.filter((m) => m.target === kind).reduce((sum, m) => sum + (m.requests ?? 0), 0);
if (matched === 0) {
  console.error('no busy sample falls in a window of either kind: is this the process those windows loaded?');
  process.exit(1);
}
// Samples are ~1 ms apart by default: µs of CPU per request = samples × interval ÷ requests.
const intervalUs = (profile.timeDeltas.reduce((sum, d) => sum + d, 0) / profile.samples.length) | 0;
const perRequest = (kind: string, samples: number) => (samples * intervalUs) / requests(kind);
const rows = Number(rowsArg ?? 30);
const all = new Set([...(selfByKind.get(kindA)?.keys() ?? []), ...(selfByKind.get(kindB)?.keys() ?? [])]);
const diffs = [...all].map((name) => {
  const a = perRequest(kindA, selfByKind.get(kindA)?.get(name) ?? 0);
  const b = perRequest(kindB, selfByKind.get(kindB)?.get(name) ?? 0);
  return { name, a, b, diff: a - b };
});
diffs.sort((x, y) => Math.abs(y.diff) - Math.abs(x.diff));
const busyA = perRequest(kindA, busyByKind.get(kindA) ?? 0);
const busyB = perRequest(kindB, busyByKind.get(kindB) ?? 0);
console.log(`A = ${kindA}: ${requests(kindA)} requests, ${busyA.toFixed(1)} µs busy per request`);
console.log(`B = ${kindB}: ${requests(kindB)} requests, ${busyB.toFixed(1)} µs busy per request`);
console.log(`A − B: ${(busyA - busyB).toFixed(1)} µs per request (×${(busyA / busyB).toFixed(3)})`);
console.log('   A µs    B µs   A−B µs  function (self time per request)');
for (const row of diffs.slice(0, rows)) {
  console.log(
    `${row.a.toFixed(2).padStart(7)} ${row.b.toFixed(2).padStart(7)} ${row.diff.toFixed(2).padStart(8)}  ${row.name}`,
  );
}
