// The processes a proxy bench run starts: the fake upstream, the baselines and keytally (seeded with
// its bench keys, on SQLite or a fresh PostgreSQL schema), with their instrumentation preloads.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { hashSecret } from '../../src/server/auth/hash.ts';
import { type Db, openDatabase } from '../../src/server/db/connection.ts';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import type { Flags } from './flags.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HMAC = 'bench-hmac-secret-0123456789abcdef0123456789';
const PG_URL = process.env.KEYTALLY_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Child {
  process: ChildProcess;
  output: () => string;
}

export function spawnTs(script: string, args: string[], env: Record<string, string> = {}): Child {
  return spawnNode(['--import', 'tsx', script, ...args], env);
}

function spawnNode(args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  // Experiments (`KEYTALLY_BENCH_NODE_FLAGS=--trace-gc`): each process's output also goes to a file there.
  const logDir = process.env.KEYTALLY_BENCH_OUTPUT_DIR;
  const log = logDir ? fs.createWriteStream(path.join(logDir, `${child.pid}.log`)) : null;
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    log?.write(chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    log?.write(chunk);
  });
  child.on('exit', () => log?.end());
  return { process: child, output: () => output };
}

export async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null) return;
  const exited = new Promise((resolve) => child.process.once('exit', resolve));
  child.process.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (child.process.exitCode === null) child.process.kill('SIGKILL');
}

export interface KeytallyTarget {
  name: string;
  url: string;
  /** `Authorization: Bearer kt-…` of a user's API key. */
  headers: Record<string, string>;
  /** keytally-<dialect>-limits: the same user's second key, without limits (`--limits-process=same`). */
  unlimitedHeaders?: Record<string, string>;
  child: Child;
  loopDelayFile?: string;
  cleanup: () => Promise<void>;
}

async function seedKey(
  db: Db,
  priced: boolean,
  limited = false,
): Promise<{ key: string; unlimited?: string }> {
  await migrateToLatest(db);
  const userId = randomUUID();
  const now = Date.now();
  if (priced) {
    await db.kysely
      .insertInto('prices')
      .values({
        id: randomUUID(),
        model: 'bench-model',
        input_micros: 150_000,
        output_micros: 600_000,
        cached_input_micros: 75_000,
        cache_write_micros: null,
        effective_from: 0,
        created_at: now,
        created_by: 'bench',
      })
      .execute();
  }
  await db.kysely
    .insertInto('users')
    .values({
      id: userId,
      email: 'bench@example.test',
      name: 'Bench',
      avatar_url: '',
      provider: 'local',
      subject: 'bench@example.test',
      password_hash: null,
      role: 'user',
      status: 'active',
      created_at: now,
      updated_at: now,
    })
    .execute();
  const insertKey = async (name: string) => {
    const key = `kt-${randomBytes(32).toString('hex')}`;
    const id = randomUUID();
    await db.kysely
      .insertInto('api_keys')
      .values({
        id,
        user_id: userId,
        name,
        key_hash: hashSecret(HMAC, key),
        key_prefix: key.slice(0, 12),
        role: 'user',
        created_at: now,
        expires_at: null,
        last_used: null,
        revoked_at: null,
      })
      .execute();
    return { key, id };
  };
  const { key, id: keyId } = await insertKey('bench-key');
  if (!limited) return { key };
  // Limits that apply to every request but never trigger: rpm and a token budget (the two the
  // issue names), checked, reserved and settled on every request.
  await db.kysely
    .insertInto('api_key_limits')
    .values({
      api_key_id: keyId,
      rpm: 1_000_000_000,
      tpm: null,
      max_parallel: null,
      token_budget: 1_000_000_000_000,
      usd_budget_nanos: null,
      budget_window: 'month',
      soft_threshold: null,
      updated_at: now,
    })
    .execute();
  // The same user's key without limits: what the same process does for a request no limit applies to.
  return { key, unlimited: (await insertKey('bench-key-unlimited')).key };
}

export async function freshPostgres(): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `kt_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      // Experiments: keep the schema to read its rows afterwards (e.g. request start times for stalls).
      if (process.env.KEYTALLY_BENCH_KEEP_SCHEMA) return void console.log(`kept schema ${schema}`);
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    },
  };
}

/** The node flags `npm start` runs keytally with: `node <flags> bin/keytally.js serve`. */
function startNodeFlags(root: string): string[] {
  const start =
    (
      JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts.start ?? '';
  const match = /^node (.*?)\s*bin\/keytally\.js/.exec(start);
  return (match?.[1] ?? '').split(' ').filter(Boolean);
}

/**
 * The instrumentation flags of one benched process: `--cpu-prof` into the given folder, with
 * `--allocations` the allocation-sampling preload (`allocations.mjs`), and with `--loop-delay` the
 * perf_hooks preload (`loop-delay.mjs`) writing to a file of its own.
 */
function instrumentation(
  flags: Flags,
  name: string,
): { args: string[]; env: Record<string, string>; loopDelayFile?: string } {
  const args = flags.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(flags.cpuProf)}`] : [];
  const env: Record<string, string> = {};
  if (flags.allocations) {
    fs.mkdirSync(flags.allocations, { recursive: true });
    args.push('--import', path.join(ROOT, 'bench/proxy/allocations.mjs'));
    env.KEYTALLY_BENCH_ALLOCATIONS_FILE = path.resolve(
      flags.allocations,
      `${name}-${Date.now()}.heapprofile`,
    );
  }
  if (!flags.loopDelay) return { args, env };
  const loopDelayFile = path.join(os.tmpdir(), `keytally-bench-loop-delay-${name}-${process.pid}.ndjson`);
  fs.rmSync(loopDelayFile, { force: true });
  return {
    args: [...args, '--import', path.join(ROOT, 'bench/proxy/loop-delay.mjs')],
    env: { ...env, KEYTALLY_BENCH_LOOP_DELAY_FILE: loopDelayFile },
    loopDelayFile,
  };
}

/**
 * `--compare=<ref>`: the commit's files (`git archive`) in a temporary folder sharing this checkout's
 * node_modules and web build (startKeytally builds its server bundle). `remove()` deletes the folder.
 */
export function checkOut(ref: string): { root: string; sha: string; remove: () => void } {
  const sha = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT }).toString().trim();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `keytally-bench-${sha}-`));
  execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C "${root}"`], { cwd: ROOT });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  if (fs.existsSync(path.join(ROOT, 'dist/web'))) {
    fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'dist/web'), path.join(root, 'dist/web'));
  }
  return { root, sha, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}

/**
 * keytally on a fresh database seeded with the bench keys: `priced` (an admin price for the bench
 * model), `limited` (the bench key has limits, and a second key has none), `build` (another
 * checkout's files, `checkOut()`, whose keytally is named `keytally-<dialect>@<sha>`).
 */
export async function startKeytally(
  dialect: 'sqlite' | 'postgres',
  upstream: string,
  flags: Flags,
  {
    priced,
    limited = false,
    build,
  }: { priced: boolean; limited?: boolean; build?: { root: string; sha: string } },
): Promise<KeytallyTarget> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-bench-'));
  const postgres = dialect === 'postgres' ? await freshPostgres() : undefined;
  const databaseUrl = postgres?.url ?? path.join(dataDir, 'keytally.db');
  const db = await openDatabase(databaseUrl);
  const { key, unlimited } = await seedKey(db, priced, limited);
  await db.close();
  const port = await freePort();
  // keytally runs its esbuild bundle only when it is newer than every source (others may be editing
  // them): build it right before the start.
  const root = build?.root ?? ROOT;
  execFileSync('npm', ['run', '--silent', 'build:server'], { cwd: root, stdio: 'inherit' });
  // `node <flags> bin/keytally.js`, as `npm start` runs it: the fresh bundle built by run(), no tsx.
  const name = build
    ? `keytally-${dialect}@${build.sha}`
    : limited
      ? `keytally-${dialect}-limits`
      : priced
        ? `keytally-${dialect}`
        : `keytally-${dialect}-unpriced`;
  const profile = instrumentation(flags, name);
  // The node flags of `npm start` (package.json), then KEYTALLY_BENCH_NODE_FLAGS (experiments).
  const nodeFlags = [
    ...startNodeFlags(root),
    ...(process.env.KEYTALLY_BENCH_NODE_FLAGS ?? '').split(' '),
  ].filter(Boolean);
  const child = spawnNode([...nodeFlags, ...profile.args, path.join(root, 'bin/keytally.js'), 'serve'], {
    ...profile.env,
    KEYTALLY_PORT: String(port),
    KEYTALLY_DATA_DIR: dataDir,
    KEYTALLY_DATABASE_URL: databaseUrl,
    KEYTALLY_HMAC_SECRET: HMAC,
    KEYTALLY_UPSTREAM_URL: `${upstream}/v1`,
    KEYTALLY_LOG_LEVEL: 'warn',
    // Experiments: `KEYTALLY_BENCH_ENV="NAME=value NAME2=value"` adds to keytally's environment.
    ...Object.fromEntries(
      (process.env.KEYTALLY_BENCH_ENV ?? '')
        .split(' ')
        .filter((pair) => pair.includes('='))
        .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    ),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (child.process.exitCode !== null) throw new Error(`keytally exited:\n${child.output()}`);
    return fetch(`${url}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
  }, 'keytally to start');
  return {
    name,
    url,
    headers: { authorization: `Bearer ${key}` },
    unlimitedHeaders: unlimited ? { authorization: `Bearer ${unlimited}` } : undefined,
    child,
    loopDelayFile: profile.loopDelayFile,
    async cleanup() {
      await stopChild(child);
      await postgres?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The baseline a cell's keytally measurements are divided by: the minimal proxy, or for streams `--stream-baseline` (the bare pipe). */
export function baselineOf(stream: boolean, flags: Flags): 'minimal-proxy' | 'bare-pipe' {
  return stream ? flags.streamBaseline : 'minimal-proxy';
}

export interface Baseline {
  url: string;
  child: Child;
  loopDelayFile?: string;
}

/** A bench script through tsx: `<script> <port> <upstream origin> …args`, ready once it prints `ready`. */
export async function startBaseline(
  name: string,
  script: string,
  upstream: string,
  flags: Flags,
  args: string[] = [],
): Promise<Baseline> {
  const port = await freePort();
  const profile = instrumentation(flags, name);
  const child = spawnNode(
    [...profile.args, '--import', 'tsx', path.join(ROOT, script), String(port), upstream, ...args],
    profile.env,
  );
  await waitFor(() => child.output().includes('ready'), `the ${name}`);
  return { url: `http://127.0.0.1:${port}`, child, loopDelayFile: profile.loopDelayFile };
}

/**
 * `--floor=on`: floor-proxy.ts with a key of its own, as a target measured like keytally (paired with
 * the baseline in every round).
 */
export async function startFloor(upstream: string, flags: Flags): Promise<KeytallyTarget> {
  const key = `kt-${randomBytes(32).toString('hex')}`;
  const floor = await startBaseline('floor-proxy', 'bench/proxy/floor-proxy.ts', upstream, flags, [
    HMAC,
    key,
  ]);
  return {
    ...floor,
    name: 'floor-proxy',
    headers: { authorization: `Bearer ${key}` },
    cleanup: () => stopChild(floor.child),
  };
}
