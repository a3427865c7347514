import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killTrackedKeytallies, PID_FILE_ENV } from './helpers/process.ts';

/**
 * Vitest global setup: gives every worker a pid file (through the environment the workers inherit)
 * and, after the run, passed or failed, kills any `keytally` a test spawned and did not stop.
 */
export default function setup(): () => Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-test-pids-'));
  const pidFile = path.join(dir, 'pids');
  fs.writeFileSync(pidFile, '');
  process.env[PID_FILE_ENV] = pidFile;
  return async () => {
    const killed = await killTrackedKeytallies(pidFile);
    if (killed.length > 0) {
      console.warn(`global teardown: killed ${killed.length} keytally process(es) left running by tests`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
