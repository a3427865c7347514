#!/usr/bin/env -S node --max-semi-space-size=4
// --max-semi-space-size=4 (also in `npm start`): V8's young generation stops at 8 MB instead of
// 32 MB. Under 64 concurrent requests it fills to its maximum: 16 → 8 MB semi-spaces saved ~17 MB of
// peak RSS, 8 → 4 MB another ~4 MB, with no measurable change in throughput; 1-2 MB promote more
// objects to the old generation and raise the peak again (bench/README.md).
// Runs the esbuild bundle `dist/server/main.js` (built by `npm run build` and by `prepare`, which
// `npm ci` runs) when it is at least as new as every file and folder under src/server and
// src/shared; otherwise runs the TypeScript sources through tsx's loader. The bundle saves tsx's
// ESM-hooks worker thread (its own V8 heap, ~70 MB RSS) and the start-up compile; the freshness check
// (a few ms of stat calls) means a developer editing sources, and the tests, never run stale code.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// The old generation may grow to twice what survived the last full collection before the next one
// starts (V8 chooses 1.1-4x by itself). On PostgreSQL, V8 kept the limit a few MB above the ~30 MB
// that survive, and started 7-8 full collections per 5 s of load (SQLite: 1-2); with 2x, 1-3, and
// keytally's p99 over the minimal proxy's fell from +8-9 to +3-5 ms, for 3-12 MB more peak RSS
// (bench/README.md, session 9). Read by V8 at each collection, so setting it here, before the
// server's modules load, covers every way keytally is started; `node --heap-growing-percent=N` wins.
if (!process.execArgv.some((flag) => flag.startsWith('--heap-growing-percent'))) {
  setFlagsFromString('--heap-growing-percent=100');
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist/server/main.js');

/** Newest mtime (ms) of a folder, its files and its subfolders; a deleted file bumps its folder's. */
function newestMtime(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs;
    if (mtime > newest) newest = mtime;
  }
  return newest;
}

function bundleIsFresh() {
  let built;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {
    return false;
  }
  try {
    return ['src/server', 'src/shared'].every((dir) => newestMtime(join(root, dir)) <= built);
  } catch {
    // Sources missing or unreadable: trust the bundle (an installed package without src).
    return true;
  }
}

if (process.env.KEYTALLY_FORCE_TSX !== '1' && bundleIsFresh()) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/server/main.ts');
}
