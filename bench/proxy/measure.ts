import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';

/** The load generators: wrk (C, one thread: cheap for the two cores) and autocannon (Node). */
export type Loader = 'wrk' | 'autocannon';

export interface Measurement {
  target: string;
  loader: Loader;
  concurrency: number;
  stream: boolean;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** For a baseline (minimal-proxy, bare-pipe): the keytally target measured right after it. */
  pairedWith?: string;
  /** The round (1…rounds) of a paired measurement. */
  round?: number;
  /**
   * CPU time (user + system) the proxy process spent per request during the measurement: unlike
   * req/s and latency it hardly moves with the load of the rest of the machine.
   */
  cpuMsPerRequest?: number;
  /**
   * The same for the proxy's main thread alone (the event loop, where a Node proxy's throughput is
   * decided; the rest of cpuMsPerRequest is worker threads: SQLite's writer, the GC's helpers).
   */
  mainThreadCpuMsPerRequest?: number;
  /**
   * Share of the load's wall time the main thread ran on a core, and waited for one while runnable
   * (`/proc/<pid>/task/<pid>/schedstat`): together near 100%, the event loop is the limit even when
   * the machine has idle CPU (other threads woke at the same moments).
   */
  mainThreadRunPercent?: number;
  mainThreadWaitPercent?: number;
  /**
   * Share of the machine's CPU left idle during the load (/proc/stat, all cores): near 0, the
   * machine is the limit (every process's CPU counts); well above, one thread is.
   */
  machineIdlePercent?: number;
  /** Highest VmRSS of the proxy process sampled while this load ran. */
  rssPeakMbUnderLoad?: number;
  /**
   * keytally-postgres: CPU ms per request of the PostgreSQL server processes, which share the
   * machine's cores with keytally (other processes' use of a local server counts too).
   */
  databaseCpuMsPerRequest?: number;
  /**
   * `--loop-delay`: the proxy's event-loop delay during the load (perf_hooks histogram, µs), and its
   * garbage collector's pauses by kind (`minor`, `major`, `incremental`, `weakcb`).
   */
  loopDelay?: {
    p50Us: number;
    p99Us: number;
    p999Us: number;
    maxUs: number;
    gc?: Record<string, { count: number; totalUs: number; maxUs: number }>;
  };
  /** Requests completed in the window. */
  requests?: number;
  /**
   * The window on the system's monotonic clock (µs), the clock of a `--cpu-prof` profile's
   * timestamps: `split-profile.ts` attributes a profile's samples to the windows.
   */
  monotonicUs?: [number, number];
}

/** utime + stime of a process in ms (clock ticks of 10 ms), from /proc/<pid>/stat. */
export function cpuMs(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/**
 * utime + stime (ms) of every PostgreSQL server process on this machine (keytally's backends, and the
 * WAL writer, checkpointer and autovacuum its inserts wake), or undefined when there are none.
 */
function postgresCpuMs(): number | undefined {
  let total: number | undefined;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue;
    }
    total = (total ?? 0) + (cpuMs(Number(entry)) ?? 0);
  }
  return total;
}

/**
 * The main thread's time on a core and waiting for one while runnable, in ns
 * (/proc/<pid>/task/<pid>/schedstat: a process's main thread has its pid as tid).
 */
function schedNs(pid: number | undefined): { run: number; wait: number } | undefined {
  if (!pid) return undefined;
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
    return run === undefined || wait === undefined ? undefined : { run, wait };
  } catch {
    return undefined;
  }
}

/** The machine's idle and total CPU ticks so far, all cores (the first line of /proc/stat). */
function machineTicks(): { idle: number; total: number } | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is counted in user already)
    const total = ticks.slice(0, 8).reduce((sum, n) => sum + n, 0);
    return { idle: (ticks[3] ?? 0) + (ticks[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), or undefined. */
export function statusKb(pid: number, field: string): number | undefined {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** wrk, installed with apt-get (Debian package `wrk`) when it is missing. */
export function ensureWrk(): void {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    // wrk prints its version and exits 1: only a missing binary is ENOENT.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return;
    console.log('wrk is missing: apt-get install -y wrk');
    execFileSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' });
  }
}

interface LoadResult {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

// The Lua scripts hold the bench key: the folder is the owner's only (mkdtemp: 0700) and goes at exit.
const WRK_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-bench-wrk-'));
process.on('exit', () => fs.rmSync(WRK_DIR, { recursive: true, force: true }));

/**
 * wrk with a Lua script that sets the POST body and headers and prints its summary as JSON; one
 * thread (`-t1`), latencies in µs (autocannon's are whole ms).
 */
async function runWrk(
  url: string,
  headers: Record<string, string>,
  body: string,
  concurrency: number,
  duration: number,
): Promise<LoadResult> {
  const script = path.join(
    WRK_DIR,
    `${Buffer.from(JSON.stringify(headers) + body)
      .toString('hex')
      .slice(0, 48)}.lua`,
  );
  const lua = [
    'wrk.method = "POST"',
    // A long bracket: the body is JSON, whose escapes Lua's quoted strings do not share.
    `wrk.body = [==[${body}]==]`,
    ...Object.entries({ 'content-type': 'application/json', ...headers }).map(
      ([name, value]) => `wrk.headers["${name}"] = [==[${value}]==]`,
    ),
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("WRK_JSON {\\"requests\\":%d,\\"durationUs\\":%d,\\"p50Us\\":%d,\\"p99Us\\":%d,\\"socketErrors\\":%d,\\"non2xx\\":%d}\\n",',
    '    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),',
    '    e.connect + e.read + e.write + e.timeout, e.status))',
    'end',
  ].join('\n');
  fs.writeFileSync(script, `${lua}\n`);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      'wrk',
      ['-t1', `-c${concurrency}`, `-d${duration}s`, '--timeout', '10s', '-s', script, url],
      { maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`wrk: ${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  const line = output.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no summary:\n${output}`);
  const summary = JSON.parse(line.slice('WRK_JSON '.length)) as {
    requests: number;
    durationUs: number;
    p50Us: number;
    p99Us: number;
    socketErrors: number;
    non2xx: number;
  };
  return {
    requests: summary.requests,
    requestsPerSecond: Math.round(summary.requests / (summary.durationUs / 1e6)),
    p50Ms: summary.p50Us / 1000,
    p99Ms: summary.p99Us / 1000,
    errors: summary.socketErrors,
    non2xx: summary.non2xx,
  };
}

async function runAutocannon(
  url: string,
  headers: Record<string, string>,
  body: string,
  concurrency: number,
  duration: number,
): Promise<LoadResult> {
  const result = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
    connections: concurrency,
    duration,
  });
  return {
    requests: result.requests.total,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

export interface MeasureOptions {
  target: string;
  loader: Loader;
  url: string;
  headers: Record<string, string>;
  concurrency: number;
  stream: boolean;
  duration: number;
  /** The proxy's pid: CPU per request and RSS under load. */
  pid?: number;
  /** The file the proxy's `--loop-delay` preload appends to (SIGUSR2 before and after the load). */
  loopDelayFile?: string;
}

/** One load of `duration` seconds on `/v1/chat/completions`. */
export async function measure(options: MeasureOptions): Promise<Measurement> {
  const { target, loader, url, headers, concurrency, stream, duration, pid, loopDelayFile } = options;
  const cpuBefore = cpuMs(pid);
  const databaseBefore = target === 'keytally-postgres' ? postgresCpuMs() : undefined;
  const loopDelayLines = loopDelayFile && pid ? await signalLoopDelay(pid, loopDelayFile) : 0;
  // RSS of the proxy process while the load runs, sampled every 100 ms (VmHWM, reported per target,
  // is the whole life's peak: it also counts what happens after the load, e.g. the usage of the
  // streams the load generator cuts when it stops being estimated, which loads the tokenizer).
  let rssPeakKb = 0;
  const sampler =
    pid === undefined
      ? undefined
      : setInterval(() => {
          rssPeakKb = Math.max(rssPeakKb, statusKb(pid, 'VmRSS') ?? 0);
        }, 100);
  const body = JSON.stringify({
    model: 'bench-model',
    stream,
    messages: [{ role: 'user', content: 'Say hello to the benchmark.' }],
  });
  const run = loader === 'wrk' ? runWrk : runAutocannon;
  const schedBefore = schedNs(pid);
  const machineBefore = machineTicks();
  const startUs = Number(process.hrtime.bigint() / 1000n);
  const result = await run(`${url}/v1/chat/completions`, headers, body, concurrency, duration);
  const endUs = Number(process.hrtime.bigint() / 1000n);
  const schedAfter = schedNs(pid);
  const machineAfter = machineTicks();
  clearInterval(sampler);
  const cpuAfter = cpuMs(pid);
  const databaseAfter = databaseBefore === undefined ? undefined : postgresCpuMs();
  let loopDelay: Measurement['loopDelay'];
  if (loopDelayFile && pid) {
    await signalLoopDelay(pid, loopDelayFile, loopDelayLines);
    const last = fs.readFileSync(loopDelayFile, 'utf8').trim().split('\n').at(-1);
    if (last) loopDelay = JSON.parse(last) as Measurement['loopDelay'];
  }
  const perRequest = (ms: number) => Number((ms / result.requests).toFixed(3));
  return {
    target,
    loader,
    concurrency,
    stream,
    requestsPerSecond: result.requestsPerSecond,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    errors: result.errors,
    non2xx: result.non2xx,
    cpuMsPerRequest:
      cpuBefore !== undefined && cpuAfter !== undefined && result.requests > 0
        ? perRequest(cpuAfter - cpuBefore)
        : undefined,
    mainThreadCpuMsPerRequest:
      schedBefore && schedAfter && result.requests > 0
        ? perRequest((schedAfter.run - schedBefore.run) / 1e6)
        : undefined,
    mainThreadRunPercent: sharePercent(schedBefore?.run, schedAfter?.run, startUs, endUs),
    mainThreadWaitPercent: sharePercent(schedBefore?.wait, schedAfter?.wait, startUs, endUs),
    machineIdlePercent:
      machineBefore && machineAfter && machineAfter.total > machineBefore.total
        ? Math.round(
            (1000 * (machineAfter.idle - machineBefore.idle)) / (machineAfter.total - machineBefore.total),
          ) / 10
        : undefined,
    rssPeakMbUnderLoad: pid === undefined ? undefined : Math.round(rssPeakKb / 102.4) / 10,
    databaseCpuMsPerRequest:
      databaseBefore !== undefined && databaseAfter !== undefined && result.requests > 0
        ? perRequest(databaseAfter - databaseBefore)
        : undefined,
    loopDelay,
    requests: result.requests,
    monotonicUs: [startUs, endUs],
  };
}

/** Nanoseconds between two readings as a share (%) of a window in µs. */
function sharePercent(before: number | undefined, after: number | undefined, startUs: number, endUs: number) {
  if (before === undefined || after === undefined || endUs <= startUs) return undefined;
  return Math.round((after - before) / (endUs - startUs)) / 10;
}

/** SIGUSR2 to the process; resolves once its histogram line is written. Returns the file's line count. */
async function signalLoopDelay(pid: number, file: string, linesBefore?: number): Promise<number> {
  const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').length - 1 : 0);
  const before = linesBefore ?? lines();
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 5_000;
  while (lines() === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  return lines();
}
