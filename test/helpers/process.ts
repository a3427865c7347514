import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO_ROOT, 'bin/keytally.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface KeytallyProcess {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Environment for a child keytally: only what the test gives, plus PATH/HOME. */
export function childEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env };
}

/**
 * Set by test/global-setup.ts: every spawned keytally's pid is appended here, and the global
 * teardown kills whatever is still alive, so a suite that fails before its `stop()` (or a worker
 * that dies) leaves no `keytally serve` behind.
 */
export const PID_FILE_ENV = 'KEYTALLY_TEST_PID_FILE';

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function trackChild(child: ChildProcess): void {
  const pidFile = process.env[PID_FILE_ENV];
  if (pidFile && child.pid !== undefined) fs.appendFileSync(pidFile, `${child.pid}\n`);
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A worker that exits normally takes its children along; one killed by a signal does not run
    // this, which is what the pid file is for.
    process.once('exit', () => {
      for (const live of liveChildren) live.kill('SIGKILL');
    });
  }
}

function commandLine(pid: number): string {
  try {
    if (fs.existsSync('/proc/self')) return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // macOS and the BSDs have no /proc.
    return execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
  } catch {
    return ''; // gone
  }
}

function isKeytally(pid: number): boolean {
  return commandLine(pid).includes(BIN);
}

/**
 * Kills (SIGKILL) every keytally listed in `pidFile` that is still running and waits until they are
 * gone; returns their pids. The command line is checked first so that a recycled pid is left alone.
 */
export async function killTrackedKeytallies(pidFile: string, timeoutMs = 5000): Promise<number[]> {
  let text = '';
  try {
    text = fs.readFileSync(pidFile, 'utf8');
  } catch {
    return [];
  }
  const pids = [...new Set(text.split('\n').filter(Boolean).map(Number))].filter(
    (pid) => pid > 0 && isKeytally(pid),
  );
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited in between
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isKeytally) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return pids;
}

/** Spawns `keytally <args>` and collects its output. */
export function runKeytally(args: string[], env: Record<string, string>): KeytallyProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const port = Number(env.KEYTALLY_PORT ?? 0);
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Starts `keytally serve` on a free port and waits until /healthz answers. */
export async function startKeytally(
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<KeytallyProcess> {
  const port = await freePort();
  const proc = runKeytally(['serve'], { KEYTALLY_PORT: String(port), KEYTALLY_LOG_LEVEL: 'info', ...env });
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | string | undefined;
  void proc.exited.then((code) => {
    exitCode = code;
  });
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`keytally exited with ${exitCode}:\n${proc.output()}`);
    try {
      const response = await fetch(`${proc.baseUrl}/healthz`);
      if (response.ok) return proc;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await proc.stop('SIGKILL');
  throw new Error(`keytally did not start within ${timeoutMs} ms:\n${proc.output()}`);
}
