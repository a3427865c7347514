import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { Pool } from 'undici';
import { buildApp } from '../../src/server/app.ts';
import { loadConfig } from '../../src/server/config.ts';
import { type Db, openDatabase } from '../../src/server/db/connection.ts';
import type { DialectName } from '../../src/server/db/dialect.ts';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import { createLogger } from '../../src/server/logger.ts';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import { createUsageRecorder } from '../../src/server/usage/recorder.ts';
import { resolveWindow } from '../../src/server/usage/usage-window.ts';
import { type RawQuery, rawSources, rawUsage } from './localai.ts';
import { seedUsage } from './seed.ts';

/**
 * `npm run bench usage -- --rows=N --iterations=N --target-iterations=N --raw-iterations=N --dialects=sqlite,postgres [--only-target]`
 * (flags in the `--name=value` form: the bench runner passes only arguments starting with a dash)
 *
 * Seeds N raw usage rows (default 10 M) over 90 days for 1,000 keys, 200 users and 20 models into a
 * fresh SQLite file and a fresh PostgreSQL schema (KEYTALLY_BENCH_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test; the schema is dropped afterwards), then measures every
 * usage endpoint for every period through the real app over HTTP on 127.0.0.1 (auth, query, JSON,
 * the body read whole by an undici client; `--only-target`: just the admin sources month cell), beside
 * LocalAI's approach (the same answers aggregated from the raw rows and serialised) in the same run.
 * Writes bench/results/usage-<timestamp>.json.
 */

const HMAC = 'bench-hmac-secret-0123456789abcdef0123456789';
const NOW = Date.now();
const PERIODS = ['day', 'week', 'month', 'all'] as const;
const RAW_BUDGET_MS = 60_000;

interface Flags {
  rows: number;
  iterations: number;
  targetIterations: number;
  rawIterations: number;
  dialects: DialectName[];
  pgUrl: string;
  /** Only the target cell (admin sources, month) and its raw baseline. */
  onlyTarget: boolean;
}

function parseFlags(args: string[]): Flags {
  const value = (name: string): string | undefined => {
    const inline = args.find((arg) => arg.startsWith(`--${name}=`));
    if (inline) return inline.slice(name.length + 3);
    const index = args.indexOf(`--${name}`);
    return index >= 0 ? args[index + 1] : undefined;
  };
  const number = (name: string, fallback: number) => {
    const raw = value(name);
    const parsed = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`--${name} must be a positive integer`);
    return parsed;
  };
  const dialects = (value('dialects') ?? 'sqlite,postgres').split(',') as DialectName[];
  return {
    rows: number('rows', 10_000_000),
    iterations: number('iterations', 5),
    targetIterations: number('target-iterations', 40),
    rawIterations: number('raw-iterations', 3),
    dialects,
    pgUrl: process.env.KEYTALLY_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    onlyTarget: args.includes('--only-target'),
  };
}

interface Stats {
  n: number;
  p50: number;
  p95: number;
  mean: number;
  max: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    n: sorted.length,
    p50: round(at(0.5)),
    p95: round(at(0.95)),
    mean: round(sorted.reduce((s, x) => s + x, 0) / sorted.length),
    max: round(sorted[sorted.length - 1] ?? 0),
  };
}

async function measure(iterations: number, work: () => Promise<unknown>, warmUp = true): Promise<number[]> {
  // Warm-up (plans, caches, the day-part cache), not counted. The raw baseline skips it: at 10 M rows
  // one raw aggregation takes up to a minute and has no cache to warm.
  if (warmUp) await work();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await work();
    samples.push(performance.now() - start);
  }
  return samples;
}

interface Endpoint {
  name: string;
  url: (period: string) => string;
  key: 'admin' | 'user';
  raw: (db: Db, q: RawQuery, ids: { userId: string; userKeyId: string }) => Promise<string>;
  admin: boolean;
}

const ENDPOINTS: Endpoint[] = [
  {
    name: 'GET /api/auth/admin/usage/sources',
    url: (p) => `/api/auth/admin/usage/sources?period=${p}`,
    key: 'admin',
    admin: true,
    raw: (db, q) => rawSources(db, { ...q, includeLegacy: true }, true),
  },
  {
    name: 'GET /api/auth/usage/sources',
    url: (p) => `/api/auth/usage/sources?period=${p}`,
    key: 'user',
    admin: false,
    raw: (db, q, ids) => rawSources(db, { ...q, userId: ids.userId, includeLegacy: false }, false),
  },
  {
    name: 'GET /api/auth/admin/usage',
    url: (p) => `/api/auth/admin/usage?period=${p}`,
    key: 'admin',
    admin: true,
    raw: (db, q) => rawUsage(db, { ...q, includeLegacy: true }, true),
  },
  {
    name: 'GET /api/auth/usage',
    url: (p) => `/api/auth/usage?period=${p}`,
    key: 'user',
    admin: false,
    raw: (db, q, ids) => rawUsage(db, { ...q, userId: ids.userId, includeLegacy: true }, false),
  },
  {
    name: 'GET /v1/usage',
    url: (p) => `/v1/usage?period=${p}`,
    key: 'user',
    admin: false,
    raw: (db, q, ids) => rawUsage(db, { ...q, apiKeyId: ids.userKeyId, includeLegacy: true }, false),
  },
];

async function openBenchDatabase(
  dialect: DialectName,
  flags: Flags,
  dir: string,
): Promise<{ db: Db; url: string; drop: () => Promise<void> }> {
  if (dialect === 'sqlite') {
    const url = path.join(dir, 'bench.db');
    return { db: await openDatabase(url), url, drop: async () => {} };
  }
  const schema = `kt_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: flags.pgUrl });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = new URL(flags.pgUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    db: await openDatabase(url.toString()),
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: flags.pgUrl });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    },
  };
}

async function benchDialect(dialect: DialectName, flags: Flags, log: (line: string) => void) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-bench-usage-'));
  const { db, url, drop } = await openBenchDatabase(dialect, flags, dir);
  let app: FastifyInstance | undefined;
  try {
    await migrateToLatest(db);
    log(`[${dialect}] seeding ${flags.rows.toLocaleString()} rows`);
    const seeded = await seedUsage(
      db,
      { rows: flags.rows, users: 200, keys: 1000, models: 20, days: 90, now: NOW, hmacSecret: HMAC },
      log,
    );
    log(`[${dialect}] ${JSON.stringify(seeded.counts)}`);
    const config = loadConfig(
      { dataDir: dir, databaseUrl: url, hmacSecret: HMAC, logLevel: 'silent', port: '0' },
      {},
    );
    const logger = createLogger('silent');
    const recorder = await createUsageRecorder({ db, logger, flushMs: 60_000, dataDir: dir });
    app = await buildApp({ config, db, logger, hmacSecret: HMAC, recorder, now: () => NOW });
    // Over real HTTP on 127.0.0.1, the body read whole by the client: what a dashboard waits for.
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const client = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    const keys = { admin: seeded.adminKey, user: seeded.userKey };
    const cells = [];
    const slowRaw = new Map<string, number>();
    for (const endpoint of ENDPOINTS) {
      for (const period of PERIODS) {
        const target = endpoint.name === 'GET /api/auth/admin/usage/sources' && period === 'month';
        if (flags.onlyTarget && !target) continue;
        let bytes = 0;
        const inject = async () => {
          const response = await client.request({
            method: 'GET',
            path: endpoint.url(period),
            headers: { authorization: `Bearer ${keys[endpoint.key]}` },
          });
          const body = Buffer.from(await response.body.arrayBuffer());
          if (response.statusCode !== 200) {
            throw new Error(
              `${endpoint.name} ${period}: ${response.statusCode} ${body.toString('utf8', 0, 200)}`,
            );
          }
          bytes = body.length;
        };
        const rollup = stats(await measure(target ? flags.targetIterations : flags.iterations, inject));
        // The target cell again under live traffic: one new usage row for today before every request
        // (not timed), so today's day part is rebuilt each time, as it would be behind a busy gateway.
        let live: Stats | null = null;
        if (target) {
          let n = 0;
          const samples: number[] = [];
          for (let i = 0; i < flags.targetIterations; i++) {
            await insertUsageBatch(db, [
              {
                id: `live-${n++}`,
                user_id: seeded.userId,
                user_name: 'User 0',
                source: 'apikey',
                api_key_id: seeded.userKeyId,
                api_key_name: 'key 0',
                model: 'model-0',
                endpoint: '/v1/chat/completions',
                prompt_tokens: 1,
                completion_tokens: 1,
                total_tokens: 2,
                duration_ms: 1,
                created_at: NOW - 60_000,
                usage_origin: 'provider',
                aborted: 0,
                stream: 0,
                upstream: 'default',
              },
            ]);
            const start = performance.now();
            await inject();
            samples.push(performance.now() - start);
          }
          live = stats(samples);
          log(
            `[${dialect}] target cell with a write before every request: p50 ${live.p50} p95 ${live.p95} ms`,
          );
        }
        const window = resolveWindow({ period }, NOW);
        const rawQuery: RawQuery = {
          since: window.range.start,
          unit: window.granularity,
          includeLegacy: true,
        };
        // Bound the run: once a raw aggregation of an endpoint took over a minute, its longer periods
        // are not run (recorded as skipped), except the target cell, which is always measured.
        const skipRaw = !target && (slowRaw.get(endpoint.name) ?? 0) > RAW_BUDGET_MS;
        const raw = skipRaw
          ? null
          : stats(
              await measure(
                flags.rawIterations,
                () => endpoint.raw(db, rawQuery, { userId: seeded.userId, userKeyId: seeded.userKeyId }),
                false,
              ),
            );
        if (raw) slowRaw.set(endpoint.name, Math.max(slowRaw.get(endpoint.name) ?? 0, raw.max));
        const cell = {
          endpoint: endpoint.name,
          period,
          responseBytes: bytes,
          keytally: rollup,
          keytallyLiveWrites: live,
          localaiRaw: raw,
          speedupP95: raw ? Math.round((raw.p95 / Math.max(rollup.p95, 0.01)) * 10) / 10 : null,
        };
        cells.push(cell);
        log(
          `[${dialect}] ${endpoint.name.padEnd(36)} ${period.padEnd(5)} keytally p50 ${rollup.p50} p95 ${rollup.p95} ms | raw ${raw ? `p50 ${raw.p50} p95 ${raw.p95} ms | ×${cell.speedupP95}` : 'skipped (over budget)'} | ${bytes} B`,
        );
      }
    }
    await client.close();
    await recorder.close();
    return { dialect, seed: { seconds: seeded.seconds, counts: seeded.counts }, cells };
  } finally {
    await app?.close();
    await db.close();
    await drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const flags = parseFlags(args);
  const log = (line: string) => console.log(line);
  const results = [];
  for (const dialect of flags.dialects) results.push(await benchDialect(dialect, flags, log));
  const target = results.map((result) => {
    const cell = result.cells.find(
      (c) => c.endpoint === 'GET /api/auth/admin/usage/sources' && c.period === 'month',
    );
    return {
      dialect: result.dialect,
      p95Ms: cell?.keytally.p95,
      p95MsWithLiveWrites: cell?.keytallyLiveWrites?.p95,
      rawP95Ms: cell?.localaiRaw?.p95,
      speedup: cell?.speedupP95,
      met: cell !== undefined && cell.keytally.p95 <= 100 && (cell.speedupP95 ?? 0) >= 20,
    };
  });
  const output = {
    suite: 'usage',
    at: new Date().toISOString(),
    flags: { ...flags, pgUrl: undefined },
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memGb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
    },
    target: {
      rule: 'admin sources, period month: p95 <= 100 ms and >= 20x faster than raw aggregation',
      results: target,
    },
    results,
  };
  const dir = path.resolve('bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `usage-${output.at.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);
  console.log(`\ntarget: ${JSON.stringify(target)}\nwrote ${file}`);
}
