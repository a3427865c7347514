import type { Flags } from './flags.ts';
import { type Loader, type Measurement, measure } from './measure.ts';
import type { KeytallyTarget } from './processes.ts';

/**
 * Alternating windows of two loads (a, b, b, a, a, b, …): the order flips every pair so that a drift
 * of the machine favours neither. Back-to-back windows on this VM differ by up to 20% (and whole runs
 * by 40%) with nothing changed; a median of many short pairs settles within a few percent.
 */
export async function alternate(
  pairs: number,
  loadA: () => Promise<Measurement>,
  loadB: () => Promise<Measurement>,
): Promise<{ a: Measurement; b: Measurement }[]> {
  const out: { a: Measurement; b: Measurement }[] = [];
  for (let pair = 1; pair <= pairs; pair += 1) {
    const bFirst = pair % 2 === 0;
    const first = await (bFirst ? loadB : loadA)();
    const second = await (bFirst ? loadA : loadB)();
    out.push(bFirst ? { a: second, b: first } : { a: first, b: second });
  }
  return out;
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
  const concurrency = flags.concurrency.includes(16) ? 16 : (flags.concurrency[0] ?? 16);
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
        pairs.forEach(({ a, b }, index) => {
          out.push({ dialect, ref: ref.name, loader, concurrency, stream, pair: index + 1, off: a, on: b });
        });
        console.log(
          `compare pairs ${dialect} ${loader} c=${concurrency} stream=${stream}: ${pairs.map(({ a, b }) => ((100 * b.requestsPerSecond) / a.requestsPerSecond).toFixed(0)).join(' ')} (% this checkout ÷ ${ref.name})`,
        );
      }
    }
  }
}
