import os from 'node:os';
import path from 'node:path';
import { type Flags, parseFlags } from './flags.ts';
import { type LimitsPair, measureLimitsPairs } from './limits-pairs.ts';
import { ensureWrk, type Measurement, measure, statusKb } from './measure.ts';
import { type ComparePair, measureComparePairs } from './pairs.ts';
import {
  type Baseline,
  baselineOf,
  checkOut,
  type KeytallyTarget,
  ROOT,
  spawnTs,
  startBaseline,
  startFloor,
  startKeytally,
  stopChild,
  waitFor,
} from './processes.ts';
import { measureRecorder, type RecorderMeasurement } from './recorder-bench.ts';
import { report, table } from './report.ts';

/**
 * `npm run bench proxy -- --duration=5 --concurrency=16 --stream=false,true --rounds=5 --loaders=wrk,autocannon`
 *
 * In one run, against the same fast fake upstream (its own process): the upstream directly, two
 * baselines (a minimal Fastify + undici pass-through proxy for JSON answers, a bare node:http +
 * undici pipe for streamed ones), and keytally with everything on (API-key auth, usage capture, the
 * journaled recorder on SQLite and on PostgreSQL in a fresh schema of KEYTALLY_BENCH_DATABASE_URL,
 * default postgres://postgres@127.0.0.1:5432/test), each its own process, so keytally's peak RSS
 * (VmHWM) is its own. Every cell (concurrency × streamed or not) runs `--rounds` rounds; in each, for
 * each load generator (wrk, autocannon), the cell's baseline is measured right before each keytally
 * target, the targets' order alternating between rounds, and the report gives the median of the
 * rounds' ratios with their range. Then the recorder alone: rows/s into SQLite and PostgreSQL.
 * Prints the targets and writes bench/results/proxy-<timestamp>.json.
 */

// Each proxy's load before its measured window (JIT, connection pools, caches).
const WARM_UP_SECONDS = 3;

let loadAverageAtStart: number[] = [];

export async function run(args: string[]): Promise<void> {
  const flags = parseFlags(args);
  loadAverageAtStart = os.loadavg();
  const measurements: Measurement[] = [];
  const peaks: Record<string, number> = {};
  const limitsPairs: LimitsPair[] = [];
  const comparePairs: ComparePair[] = [];
  if (flags.parts.includes('proxy')) await runProxy(flags, measurements, peaks, limitsPairs, comparePairs);
  const recorder: RecorderMeasurement[] = [];
  if (flags.parts.includes('recorder')) {
    for (const dialect of flags.dialects) {
      const m = await measureRecorder(dialect, flags.rows);
      recorder.push(m);
      console.log(
        `recorder ${dialect}: ${m.rowsPerSecond} rows/s end to end (append ${m.appendRowsPerSecond} rows/s), ${m.committed}/${m.rows} committed`,
      );
    }
  }
  report(
    flags,
    measurements,
    peaks,
    recorder,
    { limits: limitsPairs, compare: comparePairs },
    loadAverageAtStart,
  );
}

async function runProxy(
  flags: Flags,
  measurements: Measurement[],
  peaks: Record<string, number>,
  limitsPairs: LimitsPair[],
  comparePairs: ComparePair[],
): Promise<void> {
  if (flags.loaders.includes('wrk')) ensureWrk();
  const compared = flags.compare ? checkOut(flags.compare) : undefined;
  const upstreamChild = spawnTs(path.join(ROOT, 'bench/proxy/upstream-server.ts'), []);
  await waitFor(() => upstreamChild.output().includes('http://'), 'the fake upstream');
  const upstream = upstreamChild.output().trim().split('\n')[0] ?? '';
  const baselines: Record<'minimal-proxy' | 'bare-pipe', Baseline> = {
    'minimal-proxy': await startBaseline('minimal-proxy', 'bench/proxy/minimal-proxy.ts', upstream, flags),
    'bare-pipe': await startBaseline('bare-pipe', 'bench/proxy/bare-pipe.ts', upstream, flags),
  };
  const print = (m: Measurement) => {
    measurements.push(m);
    console.log(table([m]).split('\n')[1]);
  };
  // Every keytally target runs for the whole measurement (an idle one costs nothing but its
  // 1-s flush timer), so that the rounds can interleave them.
  const keytallys: KeytallyTarget[] = [];
  try {
    const base = { headers: {}, duration: flags.duration };
    // Warm-ups use the first load generator asked for (wrk is installed only when asked for).
    const warmUpLoader = flags.loaders[0] ?? 'wrk';
    await measure({
      ...base,
      target: 'upstream-direct',
      loader: warmUpLoader,
      url: upstream,
      concurrency: 16,
      stream: false,
      duration: 1,
    });
    for (const concurrency of flags.concurrency) {
      for (const stream of flags.streams) {
        for (const loader of flags.loaders) {
          print(
            await measure({ ...base, target: 'upstream-direct', loader, url: upstream, concurrency, stream }),
          );
        }
      }
    }
    if (flags.floor) keytallys.push(await startFloor(upstream, flags));
    for (const dialect of flags.dialects) {
      for (const priced of flags.prices)
        keytallys.push(await startKeytally(dialect, upstream, flags, { priced }));
      if (flags.limits)
        keytallys.push(await startKeytally(dialect, upstream, flags, { priced: true, limited: true }));
      if (compared)
        keytallys.push(await startKeytally(dialect, upstream, flags, { priced: true, build: compared }));
    }
    // Warm-up, 3 s each (JIT, caches, connection pools): in 1-s warm-ups the first round measured
    // every proxy, the minimal one included, at a third to a half of its later rate.
    for (const keytally of keytallys) {
      for (const stream of flags.streams) {
        await measure({
          ...base,
          ...keytally,
          target: keytally.name,
          loader: warmUpLoader,
          concurrency: 16,
          stream,
          duration: WARM_UP_SECONDS,
        });
      }
    }
    for (const [name, baseline] of Object.entries(baselines)) {
      await measure({
        ...base,
        url: baseline.url,
        target: name,
        loader: warmUpLoader,
        concurrency: 16,
        stream: name === 'bare-pipe',
        duration: WARM_UP_SECONDS,
      });
    }
    for (const concurrency of flags.concurrency) {
      for (const stream of flags.streams) {
        const baselineName = baselineOf(stream, flags);
        const baseline = baselines[baselineName];
        for (let round = 1; round <= flags.rounds; round += 1) {
          // Alternate the targets' order between rounds: neither dialect is always measured second.
          const order = round % 2 === 1 ? keytallys : [...keytallys].reverse();
          for (const keytally of order) {
            for (const loader of flags.loaders) {
              // The baseline right before keytally, same settings and load generator: on a shared
              // machine the load drifts within minutes, so each ratio compares two back-to-back
              // measurements.
              const paired = await measure({
                ...base,
                target: baselineName,
                loader,
                url: baseline.url,
                concurrency,
                stream,
                pid: baseline.child.process.pid,
                loopDelayFile: baseline.loopDelayFile,
              });
              paired.pairedWith = keytally.name;
              paired.round = round;
              print(paired);
              const m = await measure({
                ...base,
                target: keytally.name,
                loader,
                url: keytally.url,
                headers: keytally.headers,
                concurrency,
                stream,
                pid: keytally.child.process.pid,
                loopDelayFile: keytally.loopDelayFile,
              });
              m.round = round;
              print(m);
            }
          }
        }
      }
    }
    if (flags.limits) await measureLimitsPairs(flags, keytallys, limitsPairs);
    await measureComparePairs(flags, keytallys, comparePairs);
    for (const keytally of keytallys) {
      peaks[keytally.name] = (statusKb(keytally.child.process.pid ?? 0, 'VmHWM') ?? 0) * 1024;
    }
  } finally {
    for (const keytally of keytallys) await keytally.cleanup();
    for (const baseline of Object.values(baselines)) await stopChild(baseline.child);
    await stopChild(upstreamChild);
    compared?.remove();
  }
}
