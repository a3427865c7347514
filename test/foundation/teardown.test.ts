import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/process.ts';

function alive(pid: number): boolean {
  try {
    // A zombie has an empty command line; a live keytally names bin/keytally.js.
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('keytally');
  } catch {
    return false;
  }
}

describe('global teardown', () => {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-teardown-'));
  afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

  it('leaves no keytally process behind after a failing run', async () => {
    const child = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--config',
        'test/fixtures/teardown/vitest.config.ts',
      ],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', FIXTURE_OUT_DIR: outDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));

    expect(code, output).not.toBe(0);
    const pids = ['fails.pid', 'worker-dies.pid'].map((name) =>
      Number(fs.readFileSync(path.join(outDir, name), 'utf8')),
    );
    for (const pid of pids) expect(pid).toBeGreaterThan(0);
    expect(pids.filter(alive), output).toEqual([]);
    expect(output).toMatch(/killed 2 keytally process/);
  }, 60_000);
});
