import fs from 'node:fs';
import path from 'node:path';

/**
 * A lock across processes (test files run in parallel workers) around one-time set-up work such as
 * unpacking Chromium or building the dashboard: mkdir is atomic. A holder that died leaves its
 * directory behind; the next waiter sees its pid is gone and takes the lock over.
 */
export async function withFileLock<T>(
  lockDir: string,
  fn: () => Promise<T> | T,
  waitMs = 180_000,
): Promise<T> {
  const pidFile = path.join(lockDir, 'pid');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(pidFile, String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = readOwner(pidFile);
      if (owner > 0 && !isAlive(owner)) fs.rmSync(lockDir, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockDir}`);
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

function readOwner(pidFile: string): number {
  try {
    return Number(fs.readFileSync(pidFile, 'utf8')) || 0;
  } catch {
    return 0; // just created (pid not written yet) or just released
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
