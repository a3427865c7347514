// The proxy bench's command-line flags, their meaning and their defaults.
import type { Loader } from './measure.ts';

export interface Flags {
  duration: number;
  concurrency: number[];
  rows: number;
  /** `proxy`, `recorder` or both (default). */
  parts: string[];
  /** `sqlite`, `postgres` or both (default): the keytally targets and recorder runs. */
  dialects: ('sqlite' | 'postgres')[];
  /** A folder: keytally runs with `--cpu-prof` and writes its profile there. */
  cpuProf?: string;
  /** A folder: every proxy samples its allocations, garbage included (`allocations.mjs`), into it. */
  allocations?: string;
  /** `false`, `true` or both (default): non-streamed and/or streamed requests. */
  streams: boolean[];
  /**
   * Paired measurements per cell (default 3): each round measures the minimal proxy right before
   * each keytally target, the dialects' order alternating between rounds; the report gives the
   * median of the rounds' ratios and their range.
   */
  rounds: number;
  /** `wrk`, `autocannon` or both (default): the load generators, each paired with itself. */
  loaders: Loader[];
  /** Event-loop delay histograms of every proxy per measurement (a preloaded perf_hooks monitor). */
  loopDelay: boolean;
  /**
   * `on`, `off` or both (`--prices=on,off`): keytally with an admin price for the bench model (every
   * row priced: the catalogue-free cost path, resolution cached, integer arithmetic) and/or without
   * (every row `none` after the same cached look-up). Both: the report adds each dialect's CPU per
   * request priced ÷ unpriced, paired by round (the cost acceptance of issue #12).
   */
  prices: boolean[];
  /**
   * `--limits=on`: each dialect also runs as `keytally-<dialect>-limits` (priced), whose bench key
   * has an rpm and a token budget too high to trigger: the cost of admission, reservation and
   * settlement (issue #13). The report adds its throughput and CPU per request ÷ keytally's.
   */
  limits: boolean;
  /** `--limits-pairs`, `--limits-seconds`: the alternating off/on windows of `--limits=on` (30 × 2 s). */
  limitsPairs: number;
  limitsSeconds: number;
  /**
   * `--limits-process=same,separate` (default both): how `--limits=on`'s pairs compare. `same`: one
   * keytally process, its bench key with limits against a second key of the same user without any
   * (windows alternate the key, nothing else); `separate`: keytally-<dialect>-limits against
   * keytally-<dialect>, two processes.
   */
  limitsProcess: LimitsMode[];
  /**
   * `--stream-baseline=minimal-proxy`: streamed cells divided by the minimal Fastify + undici proxy
   * (which streams its answer through `reply.send`) instead of the bare pipe (issue #17's baseline,
   * the default): how much of the gap is the framework's.
   */
  streamBaseline: 'bare-pipe' | 'minimal-proxy';
  /**
   * `--compare=<git ref>`: each dialect also runs keytally built from that commit
   * (`keytally-<dialect>@<sha>`), and after the rounds the two are measured in `--compare-pairs=20`
   * alternating pairs of `--compare-seconds=3` windows per cell: a change's effect in one run. The
   * commit must have the same migrations as this checkout (the bench seeds one database per target
   * with this checkout's schema).
   */
  compare?: string;
  comparePairs: number;
  compareSeconds: number;
  /**
   * `--floor=on`: a third target, `floor-proxy` (floor-proxy.ts: the minimal proxy plus only what
   * keytally's guarantees need: the key's HMAC, the usage read, a journal write before the answer),
   * paired with the baseline in every round like keytally: what the guarantees alone cost.
   */
  floor: boolean;
}

export type LimitsMode = 'same' | 'separate';

export function parseFlags(args: string[]): Flags {
  const get = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
  return {
    duration: Number(get('duration') ?? 5),
    // c=16 is where the targets are; `--concurrency=1,16,64` for the whole matrix.
    concurrency: (get('concurrency') ?? '16').split(',').map(Number),
    rows: Number(get('rows') ?? 100_000),
    parts: (get('parts') ?? 'proxy,recorder').split(','),
    dialects: (get('dialects') ?? 'sqlite,postgres')
      .split(',')
      .filter((d): d is 'sqlite' | 'postgres' => d === 'sqlite' || d === 'postgres'),
    cpuProf: get('cpu-prof'),
    allocations: get('allocations'),
    streams: (get('stream') ?? 'false,true').split(',').map((value) => value === 'true'),
    // 5 rounds × 2 cells × 2 dialects × 2 loaders × 2 targets × 5 s: ~7 min of load, ~10 min in all.
    // `--rounds=0`: no paired rounds (e.g. only `--limits=on`'s pairs).
    rounds: Math.max(0, Number(get('rounds') ?? 5)),
    loaders: (get('loaders') ?? 'wrk,autocannon')
      .split(',')
      .filter((l): l is Loader => l === 'wrk' || l === 'autocannon'),
    loopDelay: args.includes('--loop-delay'),
    prices: (get('prices') ?? 'on').split(',').map((value) => value !== 'off'),
    limits: get('limits') === 'on',
    limitsPairs: Math.max(1, Number(get('limits-pairs') ?? 30)),
    limitsSeconds: Math.max(1, Number(get('limits-seconds') ?? 2)),
    streamBaseline: get('stream-baseline') === 'minimal-proxy' ? 'minimal-proxy' : 'bare-pipe',
    compare: get('compare'),
    comparePairs: Math.max(1, Number(get('compare-pairs') ?? 20)),
    compareSeconds: Math.max(1, Number(get('compare-seconds') ?? 3)),
    floor: get('floor') === 'on',
    limitsProcess: (get('limits-process') ?? 'same,separate')
      .split(',')
      .filter((mode): mode is LimitsMode => mode === 'same' || mode === 'separate'),
  };
}
