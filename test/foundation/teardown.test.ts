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

  /** Runs the fixture suites matching `filter` in a child vitest; returns its exit code and output. */
  async function runFixture(filter: string): Promise<{ code: number | null; output: string }> {
    const child = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--config',
        'test/fixtures/teardown/vitest.config.ts',
        filter,
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
    return { code, output };
  }

  // One child run per scenario: a worker that dies can end the whole run before another file starts.
  it.each([
    ['fails', 'a suite fails with a server running'],
    ['worker-dies', 'its worker is killed with a server running'],
  ])(
    'leaves no keytally process behind when %s (%s)',
    async (fixture) => {
      const { code, output } = await runFixture(`${fixture}.fixture`);
      expect(code, output).not.toBe(0);
      const pidFile = path.join(outDir, `${fixture}.pid`);
      expect(fs.existsSync(pidFile), output).toBe(true);
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      expect(pid).toBeGreaterThan(0);
      expect(alive(pid), output).toBe(false);
      // A worker killed outright runs no exit hook: only the global teardown can have stopped it.
      if (fixture === 'worker-dies') expect(output).toMatch(/killed 1 keytally process/);
    },
    90_000,
  );
});
