// What a run prints and writes: the measurements' table, the paired ratios against issue #17's
// goals, limits' and prices' ratios, and bench/results/proxy-<timestamp>.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Flags } from './flags.ts';
import type { LimitsPair } from './limits-pairs.ts';
import type { Loader, Measurement } from './measure.ts';
import type { ComparePair, WindowPair } from './pairs.ts';
import { baselineOf, ROOT } from './processes.ts';
import type { RecorderMeasurement } from './recorder-bench.ts';

/** Garbage collection in a window: pause ms per second of load, the longest pause and its kind. */
function gcText(gc: NonNullable<NonNullable<Measurement['loopDelay']>['gc']>, seconds: number): string {
  const kinds = Object.entries(gc);
  const total = kinds.reduce((sum, [, seen]) => sum + seen.totalUs, 0);
  const longest = kinds.reduce(
    (a, b) => (b[1].maxUs > a[1].maxUs ? b : a),
    ['', { count: 0, totalUs: 0, maxUs: 0 }],
  );
  const perSecond = seconds > 0 ? (total / 1000 / seconds).toFixed(1) : '?';
  return `${perSecond}, ${(longest[1].maxUs / 1000).toFixed(1)} (${longest[0] || 'none'})`;
}

export function table(measurements: Measurement[]): string {
  const lines = [
    'target            loader      conc stream     req/s   p50 ms   p99 ms  errors  cpu ms/req  main ms/req  main run/wait %  idle %  db cpu ms/req  loop delay p99/max ms  gc pauses: ms per s, longest ms',
  ];
  for (const m of measurements) {
    const loop = m.loopDelay
      ? `${(m.loopDelay.p99Us / 1000).toFixed(1)}/${(m.loopDelay.maxUs / 1000).toFixed(1)}`
      : '';
    const gc = m.loopDelay?.gc
      ? gcText(m.loopDelay.gc, m.monotonicUs ? (m.monotonicUs[1] - m.monotonicUs[0]) / 1e6 : 0)
      : '';
    const runWait =
      m.mainThreadRunPercent === undefined
        ? ''
        : `${m.mainThreadRunPercent.toFixed(0)}/${(m.mainThreadWaitPercent ?? 0).toFixed(0)}`;
    lines.push(
      `${m.target.padEnd(17)} ${m.loader.padEnd(10)} ${String(m.concurrency).padStart(5)} ${String(m.stream).padEnd(6)} ${String(m.requestsPerSecond).padStart(9)} ${m.p50Ms.toFixed(2).padStart(8)} ${m.p99Ms.toFixed(2).padStart(8)} ${String(m.errors + m.non2xx).padStart(7)} ${(m.cpuMsPerRequest?.toFixed(3) ?? '').padStart(11)} ${(m.mainThreadCpuMsPerRequest?.toFixed(3) ?? '').padStart(12)} ${runWait.padStart(16)} ${(m.machineIdlePercent?.toFixed(1) ?? '').padStart(7)} ${(m.databaseCpuMsPerRequest?.toFixed(3) ?? '').padStart(14)}  ${loop.padEnd(21)}  ${gc}`,
    );
  }
  return lines.join('\n');
}

/**
 * Per cell (`cellOf`): the median of the pairs' on ÷ off (req/s, CPU per request), its quartiles,
 * and the totals' ratio.
 */
function windowRatios<P extends WindowPair, C extends object>(pairs: P[], cellOf: (pair: P) => C) {
  const cells = new Map<string, P[]>();
  for (const pair of pairs) {
    const cell = JSON.stringify(cellOf(pair));
    cells.set(cell, [...(cells.get(cell) ?? []), pair]);
  }
  return [...cells.values()].map((cell) => {
    const first = cell[0] as P;
    const throughputs = cell.map((p) => p.on.requestsPerSecond / p.off.requestsPerSecond);
    const total = (side: 'on' | 'off') => cell.reduce((sum, p) => sum + p[side].requestsPerSecond, 0);
    const cpu = cell
      .filter((p) => p.on.cpuMsPerRequest && p.off.cpuMsPerRequest)
      .map((p) => (p.on.cpuMsPerRequest as number) / (p.off.cpuMsPerRequest as number));
    return {
      ...cellOf(first),
      pairs: cell.length,
      throughputRatio: round3(median(throughputs)),
      throughputQuartiles: quartiles(throughputs).map(round3),
      totalsRatio: round3(total('on') / total('off')),
      cpuRatio: cpu.length > 0 ? round3(median(cpu)) : null,
      cpuQuartiles: cpu.length > 0 ? quartiles(cpu).map(round3) : null,
    };
  });
}

const cellOfPair = (pair: WindowPair) => ({
  dialect: pair.dialect,
  loader: pair.loader,
  concurrency: pair.concurrency,
  stream: pair.stream,
});

const round2 = (value: number) => Number(value.toFixed(2));
const round3 = (value: number) => Number(value.toFixed(3));

/** The first and third quartiles (nearest rank). */
function quartiles(values: readonly number[]): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))] ?? 0;
  return [at(0.25), at(0.75)];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

interface Ratio {
  target: string;
  loader: Loader;
  concurrency: number;
  stream: boolean;
  baseline: string;
  rounds: number;
  /** Median over the rounds of keytally req/s ÷ its paired baseline's. */
  throughputRatio: number | null;
  throughputRatioRange: [number, number] | null;
  /** Median over the rounds of keytally p99 − its paired baseline's p99. */
  p99AddedMs: number | null;
  p99AddedMsRange: [number, number] | null;
  /** Median over the rounds of keytally CPU ms per request ÷ the baseline's. */
  cpuRatio: number | null;
}

/** The measurements of one cell (concurrency, streamed or not, load generator) in one round. */
function inCell(concurrency: number, stream: boolean, round: number, loader: Loader) {
  return (m: Measurement) =>
    m.concurrency === concurrency && m.stream === stream && m.round === round && m.loader === loader;
}

/**
 * The targets a run pairs with a baseline: `floor-proxy` (`--floor=on`), `keytally-<dialect>` (priced),
 * `keytally-<dialect>-unpriced` and `keytally-<dialect>-limits`.
 */
function targetNames(flags: Flags): string[] {
  const floor = flags.floor ? ['floor-proxy'] : [];
  return floor.concat(
    flags.dialects.flatMap((dialect) => [
      ...flags.prices.map((priced) => (priced ? `keytally-${dialect}` : `keytally-${dialect}-unpriced`)),
      ...(flags.limits ? [`keytally-${dialect}-limits`] : []),
    ]),
  );
}

function pairRatios(flags: Flags, measurements: Measurement[]): Ratio[] {
  return flags.concurrency.flatMap((concurrency) =>
    flags.streams.flatMap((stream) =>
      flags.loaders.flatMap((loader) =>
        targetNames(flags).map((target): Ratio => {
          const baseline = baselineOf(stream, flags);
          const pairs: { throughput: number; p99Added: number; cpuRatio: number | null }[] = [];
          for (let round = 1; round <= flags.rounds; round += 1) {
            const same = inCell(concurrency, stream, round, loader);
            const b = measurements.find((m) => same(m) && m.target === baseline && m.pairedWith === target);
            const k = measurements.find((m) => same(m) && m.target === target);
            if (!b || !k) continue;
            pairs.push({
              throughput: k.requestsPerSecond / b.requestsPerSecond,
              p99Added: k.p99Ms - b.p99Ms,
              cpuRatio: k.cpuMsPerRequest && b.cpuMsPerRequest ? k.cpuMsPerRequest / b.cpuMsPerRequest : null,
            });
          }
          const throughputs = pairs.map((pair) => pair.throughput);
          const added = pairs.map((pair) => pair.p99Added);
          const cpu = pairs.flatMap((pair) => (pair.cpuRatio === null ? [] : [pair.cpuRatio]));
          const some = pairs.length > 0;
          return {
            target,
            loader,
            concurrency,
            stream,
            baseline,
            rounds: pairs.length,
            throughputRatio: some ? round3(median(throughputs)) : null,
            throughputRatioRange: some
              ? [round3(Math.min(...throughputs)), round3(Math.max(...throughputs))]
              : null,
            p99AddedMs: some ? round2(median(added)) : null,
            p99AddedMsRange: some ? [round2(Math.min(...added)), round2(Math.max(...added))] : null,
            cpuRatio: cpu.length > 0 ? round3(median(cpu)) : null,
          };
        }),
      ),
    ),
  );
}

/** Issue #12: the same build's CPU per request with every row priced vs without a price. */
function costPerRow(flags: Flags, measurements: Measurement[]) {
  if (flags.prices.length < 2) return [];
  return flags.concurrency.flatMap((concurrency) =>
    flags.streams.flatMap((stream) =>
      flags.loaders.flatMap((loader) =>
        flags.dialects.map((dialect) => {
          const priced = `keytally-${dialect}`;
          const unpriced = `${priced}-unpriced`;
          const raw: number[] = [];
          const normalised: number[] = [];
          for (let round = 1; round <= flags.rounds; round += 1) {
            const same = inCell(concurrency, stream, round, loader);
            const with_ = measurements.find((m) => same(m) && m.target === priced);
            const without = measurements.find((m) => same(m) && m.target === unpriced);
            const base = (name: string) =>
              measurements.find(
                (m) => same(m) && m.target === baselineOf(stream, flags) && m.pairedWith === name,
              );
            if (!with_?.cpuMsPerRequest || !without?.cpuMsPerRequest) continue;
            raw.push(with_.cpuMsPerRequest / without.cpuMsPerRequest);
            const b1 = base(priced)?.cpuMsPerRequest;
            const b2 = base(unpriced)?.cpuMsPerRequest;
            if (b1 && b2) normalised.push(with_.cpuMsPerRequest / b1 / (without.cpuMsPerRequest / b2));
          }
          return {
            dialect,
            loader,
            concurrency,
            stream,
            /** Median over the rounds of CPU ms per request priced ÷ unpriced. */
            cpuRatio: raw.length > 0 ? round3(median(raw)) : null,
            cpuRatioRange: raw.length > 0 ? [round3(Math.min(...raw)), round3(Math.max(...raw))] : null,
            /** The same, each side first divided by its paired baseline's CPU per request. */
            cpuRatioVsBaseline: normalised.length > 0 ? round3(median(normalised)) : null,
          };
        }),
      ),
    ),
  );
}

/** Issue #17's goals, checked against a ratio's median. */
const GOALS = {
  /** Non-streamed req/s ≥ 85% of the minimal proxy (wrk). */
  nonStreamed: 0.85,
  /** Streamed req/s ≥ 75% of the bare pipe. */
  streamed: 0.75,
  /** p99 within +5 ms of the baseline's in the same round. */
  p99AddedMs: 5,
  /** Recorder rows/s: PostgreSQL ≥ 50k (issue #17); SQLite keeps issue #4's ≥ 20k. */
  recorderRowsPerSecond: { postgres: 50_000, sqlite: 20_000 },
};

export function report(
  flags: Flags,
  measurements: Measurement[],
  peaks: Record<string, number>,
  recorder: RecorderMeasurement[],
  pairs: { limits: LimitsPair[]; compare: ComparePair[] },
  loadAverageAtStart: number[],
): void {
  const limitsPairs = pairs.limits;
  const ratios = pairRatios(flags, measurements);
  console.log(`\n${table(measurements)}\n`);
  const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
  const signed = (value: number) => `${value >= 0 ? '+' : ''}${value}`;
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  console.log(
    `Targets (issue #17): keytally against its baseline, median of ${flags.rounds} paired round(s) [range]`,
  );
  for (const r of ratios) {
    if (r.throughputRatio === null || r.p99AddedMs === null) continue;
    const goal = r.stream ? GOALS.streamed : GOALS.nonStreamed;
    console.log(
      `  ${r.target.padEnd(17)} ${r.loader.padEnd(10)} c=${String(r.concurrency).padEnd(3)} ${r.stream ? 'streamed    ' : 'non-streamed'} vs ${r.baseline.padEnd(13)} throughput ${percent(r.throughputRatio)} [${r.throughputRatioRange?.map(percent).join('..')}] (≥ ${percent(goal)} ${verdict(r.throughputRatio >= goal)})  p99 ${signed(r.p99AddedMs)} ms [${r.p99AddedMsRange?.map(signed).join('..')}] (≤ +${GOALS.p99AddedMs} ${verdict(r.p99AddedMs <= GOALS.p99AddedMs)})  cpu/req ×${r.cpuRatio ?? '?'}`,
    );
  }
  const costRatios = costPerRow(flags, measurements);
  if (costRatios.length > 0) {
    console.log('cost per row: CPU per request with prices ÷ without, median of paired rounds [range]:');
    for (const r of costRatios) {
      console.log(
        `  keytally-${r.dialect.padEnd(8)} ${r.loader.padEnd(10)} c=${String(r.concurrency).padEnd(3)} stream=${String(r.stream).padEnd(5)} ×${r.cpuRatio ?? '?'} [${r.cpuRatioRange?.join('..') ?? '?'}]  (each ÷ its baseline: ×${r.cpuRatioVsBaseline ?? '?'})`,
      );
    }
  }
  for (const m of recorder) {
    console.log(
      `  recorder ${m.dialect.padEnd(8)} ${m.rowsPerSecond} rows/s (≥ ${GOALS.recorderRowsPerSecond[m.dialect]} ${verdict(m.rowsPerSecond >= GOALS.recorderRowsPerSecond[m.dialect])})`,
    );
  }
  const limits = windowRatios(limitsPairs, (pair) => ({ ...cellOfPair(pair), mode: pair.mode }));
  if (flags.limits) {
    console.log(
      `limits on ÷ off (issue #13), ${flags.limitsPairs} alternating pairs of ${flags.limitsSeconds}-s windows: median [quartiles], ratio of the totals; same process: the bench key ÷ the same user's key without limits; separate: keytally-<dialect>-limits ÷ keytally-<dialect>:`,
    );
    for (const r of limits) {
      console.log(
        `  ${r.dialect.padEnd(8)} ${`${r.mode} process`.padEnd(16)} ${r.loader.padEnd(10)} c=${String(r.concurrency).padEnd(3)} stream=${String(r.stream).padEnd(5)} throughput ${percent(r.throughputRatio)} [${r.throughputQuartiles.map(percent).join('..')}] (≥ 95% ${verdict(r.throughputRatio >= 0.95)}), totals ${percent(r.totalsRatio)}  cpu/req ×${r.cpuRatio ?? '?'}`,
      );
    }
    console.log('  and measured one after the other (each ÷ its paired baseline, ratio of the medians):');
    for (const r of ratios) {
      if (!r.target.endsWith('-limits') || r.throughputRatio === null) continue;
      const off = ratios.find(
        (o) =>
          o.target === r.target.replace(/-limits$/, '') &&
          o.concurrency === r.concurrency &&
          o.stream === r.stream &&
          o.loader === r.loader,
      );
      if (!off?.throughputRatio) continue;
      console.log(
        `  ${r.target.padEnd(24)} ${r.loader.padEnd(10)} c=${String(r.concurrency).padEnd(3)} stream=${String(r.stream).padEnd(5)} throughput ${percent(r.throughputRatio / off.throughputRatio)}  cpu/req ×${r.cpuRatio && off.cpuRatio ? (r.cpuRatio / off.cpuRatio).toFixed(3) : '?'}`,
      );
    }
  }
  const compare = windowRatios(pairs.compare, (pair) => ({ ...cellOfPair(pair), ref: pair.ref }));
  if (compare.length > 0) {
    console.log(
      `this checkout ÷ ${flags.compare}, ${flags.comparePairs} alternating pairs of ${flags.compareSeconds}-s windows: median [quartiles], ratio of the totals:`,
    );
    for (const r of compare) {
      console.log(
        `  ${r.dialect.padEnd(8)} vs ${r.ref.padEnd(24)} ${r.loader.padEnd(10)} c=${String(r.concurrency).padEnd(3)} stream=${String(r.stream).padEnd(5)} throughput ${percent(r.throughputRatio)} [${r.throughputQuartiles.map(percent).join('..')}], totals ${percent(r.totalsRatio)}  cpu/req ×${r.cpuRatio ?? '?'} [${r.cpuQuartiles?.join('..') ?? '?'}]`,
      );
    }
  }
  const paired = [...limitsPairs, ...pairs.compare].flatMap((pair) => [pair.off, pair.on]);
  for (const [name, bytes] of Object.entries(peaks)) {
    const underLoad = [...measurements, ...paired]
      .filter((m) => m.target === name && m.rssPeakMbUnderLoad !== undefined)
      .map((m) => m.rssPeakMbUnderLoad as number);
    const sampled =
      underLoad.length > 0 ? `; under load ${Math.min(...underLoad)}-${Math.max(...underLoad)} MB` : '';
    console.log(`  ${name} peak RSS ${(bytes / 1024 / 1024).toFixed(1)} MB (VmHWM)${sampled}`);
  }

  const resultsDir = path.join(ROOT, 'bench/results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `proxy-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: {
          cpus: os.cpus().length,
          model: os.cpus()[0]?.model,
          node: process.version,
          loadAverageAtStart,
          loadAverageAtEnd: os.loadavg(),
        },
        flags,
        measurements,
        ratios,
        costRatios,
        limitsPairs: { pairs: limitsPairs, ratios: limits },
        comparePairs: { pairs: pairs.compare, ratios: compare },
        peakRssBytes: peaks,
        recorder,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${path.relative(ROOT, file)}`);
}
