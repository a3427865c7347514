import type { Flags } from './flags.ts';
import { type Loader, type Measurement, measure } from './measure.ts';
import type { KeytallyTarget } from './processes.ts';

/**
 * Alternating windows of two loads (off, on, on, off, off, on, …): the order flips every pair so that
 * a drift of the machine favours neither. Back-to-back windows on this VM differ by up to 20% (and
 * whole runs by 40%) with nothing changed; a median of many short pairs settles within a few percent.
 */
export async function alternate(
  pairs: number,
  loadOff: () => Promise<Measurement>,
  loadOn: () => Promise<Measurement>,
): Promise<{ pair: number; off: Measurement; on: Measurement }[]> {
  const out: { pair: number; off: Measurement; on: Measurement }[] = [];
  for (let pair = 1; pair <= pairs; pair += 1) {
    const onFirst = pair % 2 === 0;
    const first = await (onFirst ? loadOn : loadOff)();
    const second = await (onFirst ? loadOff : loadOn)();
    out.push(onFirst ? { pair, off: second, on: first } : { pair, off: first, on: second });
  }
  return out;
}

/** The concurrency the pairs run at: c=16 (the issues' targets) when measured, else the first asked. */
export function pairConcurrency(flags: Flags): number {
  return flags.concurrency.includes(16) ? 16 : (flags.concurrency[0] ?? 16);
}

/** Each pair's on ÷ off req/s in percent, for the log line of a cell. */
export function percentsText(pairs: readonly { off: Measurement; on: Measurement }[]): string {
  return pairs
    .map(({ off, on }) => ((100 * on.requestsPerSecond) / off.requestsPerSecond).toFixed(0))
    .join(' ');
}

/** One pair of windows: `on` (the change measured) against `off`, in the same cell. */
export interface WindowPair {
  dialect: 'sqlite' | 'postgres';
  loader: Loader;
  concurrency: number;
  stream: boolean;
  pair: number;
  off: Measurement;
  on: Measurement;
}

/** `--compare=<ref>`: this checkout's keytally (`on`) against the one built from `<ref>` (`off`). */
export interface ComparePair extends WindowPair {
  ref: string;
}

/**
 * `--compare=<git ref>`: for each dialect, this checkout's keytally-<dialect> and
 * keytally-<dialect>@<ref> (the same bench key, database and flags, built from `git archive <ref>`)
 * in `--compare-pairs` alternating pairs of `--compare-seconds` windows per cell. A code change's
 * effect, measured in one run against a machine whose speed drifts by more than most changes are worth.
 */
export async function measureComparePairs(
  flags: Flags,
  keytallys: KeytallyTarget[],
  out: ComparePair[],
): Promise<void> {
  if (!flags.compare) return;
  const concurrency = pairConcurrency(flags);
  for (const dialect of flags.dialects) {
    const head = keytallys.find((k) => k.name === `keytally-${dialect}`);
    const ref = keytallys.find((k) => k.name.startsWith(`keytally-${dialect}@`));
    if (!head || !ref) continue;
    for (const stream of flags.streams) {
      for (const loader of flags.loaders) {
        const load = (target: KeytallyTarget) => () =>
          measure({
            target: target.name,
            url: target.url,
            headers: target.headers,
            pid: target.child.process.pid,
            loader,
            concurrency,
            stream,
            duration: flags.compareSeconds,
          });
        const pairs = await alternate(flags.comparePairs, load(ref), load(head));
        for (const pair of pairs) out.push({ dialect, ref: ref.name, loader, concurrency, stream, ...pair });
        console.log(
          `compare pairs ${dialect} ${loader} c=${concurrency} stream=${stream}: ${percentsText(pairs)} (% this checkout ÷ ${ref.name})`,
        );
      }
    }
  }
}
