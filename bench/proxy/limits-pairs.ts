import type { Flags, LimitsMode } from './flags.ts';
import { measure } from './measure.ts';
import { alternate, pairConcurrency, percentsText, type WindowPair } from './pairs.ts';
import type { KeytallyTarget } from './processes.ts';

/**
 * `--limits=on`, issue #13: keytally with limits and without, in many short windows that alternate
 * (off, on, on, off, off, on, …), each pair's on ÷ off. Back-to-back 4-s windows on this VM differ by
 * up to 20% with nothing changed (the minimal proxy alone: 7,148 then 9,503 req/s), several times
 * what limits cost, and that swing does not average out over five pairs. Two targets loaded at once
 * do not help either: measured so, whichever process got ahead stayed ahead (the one with limits
 * served 104-171% of the other, with less CPU per request). Thirty pairs of 2-s windows
 * (`alternate()`) give a median that settles within a few percent.
 */
export interface LimitsPair extends WindowPair {
  /** `same`: one process, a key with limits ÷ one without; `separate`: two processes. */
  mode: LimitsMode;
}

/** A load of the limits pairs: which process, and which key's Authorization. */
interface LimitsSide {
  target: string;
  url: string;
  headers: Record<string, string>;
  pid: number | undefined;
}

export async function measureLimitsPairs(
  flags: Flags,
  keytallys: KeytallyTarget[],
  out: LimitsPair[],
): Promise<void> {
  const concurrency = pairConcurrency(flags);
  for (const dialect of flags.dialects) {
    const plain = keytallys.find((k) => k.name === `keytally-${dialect}`);
    const limited = keytallys.find((k) => k.name === `keytally-${dialect}-limits`);
    if (!limited) continue;
    const side = (target: KeytallyTarget, headers: Record<string, string>, name: string): LimitsSide => ({
      target: name,
      url: target.url,
      headers,
      pid: target.child.process.pid,
    });
    for (const mode of flags.limitsProcess) {
      const sides =
        mode === 'same'
          ? limited.unlimitedHeaders && {
              off: side(limited, limited.unlimitedHeaders, `${limited.name}:unlimited-key`),
              on: side(limited, limited.headers, limited.name),
            }
          : plain && {
              off: side(plain, plain.headers, plain.name),
              on: side(limited, limited.headers, limited.name),
            };
      if (!sides) continue;
      for (const stream of flags.streams) {
        for (const loader of flags.loaders) {
          const load = (s: LimitsSide) =>
            measure({ ...s, loader, concurrency, stream, duration: flags.limitsSeconds });
          const pairs = await alternate(
            flags.limitsPairs,
            () => load(sides.off),
            () => load(sides.on),
          );
          for (const pair of pairs) out.push({ dialect, mode, loader, concurrency, stream, ...pair });
          console.log(
            `limits pairs ${dialect} (${mode} process) ${loader} c=${concurrency} stream=${stream}: ${percentsText(pairs)} (% on ÷ off)`,
          );
        }
      }
    }
  }
}
