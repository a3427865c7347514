import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../test/helpers/process.ts';
import { ensureWebBuild } from './helpers.ts';

/** The dashboard's JavaScript stays at most 300 kB gzipped (issue #18); uPlot is ~20 kB of it. */
const MAX_GZIPPED_JS = 300_000;

describe('dashboard bundle', () => {
  it('ships at most 300 kB of gzipped JavaScript', () => {
    ensureWebBuild();
    const assets = path.join(REPO_ROOT, 'dist/web/assets');
    const scripts = fs.readdirSync(assets).filter((name) => name.endsWith('.js'));
    expect(scripts.length).toBeGreaterThan(0);
    const gzipped = scripts.reduce(
      (sum, name) => sum + zlib.gzipSync(fs.readFileSync(path.join(assets, name)), { level: 9 }).length,
      0,
    );
    console.log(`dashboard JS: ${scripts.length} file(s), ${gzipped} bytes gzipped`);
    expect(gzipped).toBeLessThanOrEqual(MAX_GZIPPED_JS);
  });
});
