import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withFileLock } from './file-lock.ts';

/**
 * Finds a Chromium for the browser tests, so that `npm ci && npm test` runs every browser suite on
 * a machine without a system browser:
 *   1. `KEYTALLY_CHROMIUM` (an executable path; a missing file is an error, not a fallback),
 *   2. Debian's `/usr/bin/chromium`, then `chromium` / `chromium-browser` on PATH,
 *   3. the Chromium shipped inside the `@sparticuz/chromium` devDependency (unpacked once into the
 *      system temp dir, ~3 s).
 * `KEYTALLY_CHROMIUM_SKIP_SYSTEM=1` skips step 2: the path a fresh machine takes, exercised by
 * e2e/chromium.test.ts on machines that do have a system browser.
 */

export type ChromiumSource = 'env' | 'system' | 'bundled';

export interface FoundChromium {
  executablePath: string;
  source: ChromiumSource;
}

const SYSTEM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const PATH_NAMES = ['chromium', 'chromium-browser'];
// The unpacked binary is ~190 MB; a run killed mid-unpack leaves a truncated file behind that
// would pass an existence check. A marker written after a successful `--version` vouches for it.
const MARKER = path.join(os.tmpdir(), 'keytally-chromium.ok');
const LOCK = path.join(os.tmpdir(), 'keytally-chromium.lock');

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export function findSystemChromium(): string | undefined {
  for (const file of SYSTEM_PATHS) if (isExecutable(file)) return file;
  for (const name of PATH_NAMES) {
    const found = findOnPath(name);
    if (found) return found;
  }
  return undefined;
}

function runsVersion(executable: string): boolean {
  try {
    const out = execFileSync(executable, ['--version'], {
      timeout: 20_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return /chrom/i.test(out.toString());
  } catch {
    return false;
  }
}

/** Unpacks (once per machine) and returns the Chromium inside `@sparticuz/chromium`. */
export async function bundledChromium(): Promise<string> {
  const { default: sparticuz } = await import('@sparticuz/chromium');
  const unpacked = path.join(os.tmpdir(), 'chromium');
  if (fs.existsSync(MARKER) && isExecutable(unpacked)) return unpacked;
  return withFileLock(LOCK, async () => {
    if (fs.existsSync(MARKER) && isExecutable(unpacked)) return unpacked;
    if (fs.existsSync(unpacked) && !runsVersion(unpacked)) fs.rmSync(unpacked, { force: true });
    const executable = await sparticuz.executablePath();
    if (!runsVersion(executable)) {
      fs.rmSync(executable, { force: true });
      throw new Error(`the Chromium unpacked from @sparticuz/chromium (${executable}) does not run`);
    }
    fs.writeFileSync(MARKER, executable);
    return executable;
  });
}

export async function findChromium(env: NodeJS.ProcessEnv = process.env): Promise<FoundChromium> {
  const given = env.KEYTALLY_CHROMIUM;
  if (given) {
    if (!isExecutable(given)) throw new Error(`KEYTALLY_CHROMIUM=${given} is not an executable file`);
    return { executablePath: given, source: 'env' };
  }
  if (env.KEYTALLY_CHROMIUM_SKIP_SYSTEM !== '1') {
    const system = findSystemChromium();
    if (system) return { executablePath: system, source: 'system' };
  }
  return { executablePath: await bundledChromium(), source: 'bundled' };
}
