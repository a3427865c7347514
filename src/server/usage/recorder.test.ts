import fs from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy } from '../../../test/gateway/tcp-proxy.ts';
import { createTestDatabase, DIALECTS, makeTempDir, type TestDatabase } from '../../../test/helpers/db.ts';
import { createApiKey, createUser } from '../../../test/helpers/factories.ts';
import { HAS_POSTGRES_SERVER } from '../../../test/helpers/postgres.ts';
import { type Db, openDatabase } from '../db/connection.ts';
import { createLogger } from '../logger.ts';
import { insertUsageBatch, type UsageRow } from './ingest.repository.ts';
import { BATCH_ROWS, createUsageRecorder, type UsageEvent } from './recorder.ts';

const logger = createLogger('silent');
const HOUR = 3_600_000;
const BASE = Date.UTC(2026, 10, 1);

function event(overrides: Partial<UsageEvent> = {}): UsageEvent {
  return {
    user_id: 'u1',
    user_name: 'User One',
    source: 'apikey',
    api_key_id: 'k1',
    api_key_name: 'key one',
    model: 'm1',
    endpoint: '/v1/chat/completions',
    prompt_tokens: 10,
    completion_tokens: 5,
    total_tokens: 15,
    duration_ms: 12,
    created_at: BASE,
    usage_origin: 'provider',
    aborted: 0,
    stream: 0,
    upstream: 'default',
    ...overrides,
  };
}

function journalFiles(dataDir: string): string[] {
  const dir = path.join(dataDir, 'usage-journal');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith('.jsonl')) : [];
}

describe.each(DIALECTS)('journaled usage recorder on %s', (dialect) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.close();
  });
  const db = () => database.db;
  const clear = async () => {
    await db().kysely.deleteFrom('usage_records').execute();
    await db().kysely.deleteFrom('usage_rollups_hourly').execute();
  };
  const count = async () =>
    Number(
      (
        await db()
          .kysely.selectFrom('usage_records')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('journals each row before record() resolves, commits on flushNow, then deletes the segment', async () => {
    await clear();
    const dataDir = makeTempDir();
    const recorder = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir });
    await recorder.record(event({ id: 'journal-1' }));
    const files = journalFiles(dataDir);
    expect(files).toHaveLength(1);
    const text = fs.readFileSync(path.join(dataDir, 'usage-journal', files[0]!), 'utf8');
    expect(JSON.parse(text.trim())).toMatchObject({ id: 'journal-1', total_tokens: 15 });
    expect(recorder.stats()).toMatchObject({ queueDepth: 1, rowsWritten: 0 });
    expect(await count()).toBe(0);
    await recorder.flushNow();
    expect(await count()).toBe(1);
    expect(journalFiles(dataDir)).toHaveLength(0);
    expect(recorder.stats()).toMatchObject({ queueDepth: 0, rowsWritten: 1, journalBytes: 0 });
    await recorder.close();
  });

  it('commits a batch as soon as batchRows rows are recorded (1000 by default), before the flush interval', async () => {
    for (const [batchRows, rows] of [
      [3, 3],
      [undefined, BATCH_ROWS],
    ] as const) {
      await clear();
      const dataDir = makeTempDir();
      const recorder = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir, batchRows });
      // One short of a batch: nothing is committed before the (minute-long) flush interval.
      await Promise.all(
        Array.from({ length: rows - 1 }, (_, i) => recorder.record(event({ id: `batch-${rows}-${i}` }))),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await count()).toBe(0);
      await recorder.record(event({ id: `batch-${rows}-last` }));
      const deadline = Date.now() + 5000;
      while ((await count()) < rows && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await count()).toBe(rows);
      await recorder.close();
    }
  });

  it('a row without the optional fields gets the raw table defaults, also in the rollups', async () => {
    await clear();
    const minimal = { id: 'minimal-1', user_id: 'u-min', created_at: BASE + 5 } as UsageRow;
    expect(await insertUsageBatch(db(), [minimal, { ...minimal }])).toBe(1);
    const raw = await db().kysely.selectFrom('usage_records').selectAll().executeTakeFirstOrThrow();
    expect(raw).toMatchObject({
      id: 'minimal-1',
      user_name: '',
      source: '',
      api_key_id: null,
      model: '',
      total_tokens: 0,
      usage_origin: 'provider',
      aborted: 0,
      upstream: '',
    });
    const rollups = await db().kysely.selectFrom('usage_rollups_hourly').selectAll().execute();
    expect(rollups).toHaveLength(1);
    expect(rollups[0]).toMatchObject({
      hour: BASE,
      user_id: 'u-min',
      api_key_id: '',
      request_count: 1,
      last_used: BASE + 5,
    });
    // The same batch again (a replay) adds nothing.
    expect(await insertUsageBatch(db(), [minimal])).toBe(0);
    expect(
      Number(
        (await db().kysely.selectFrom('usage_rollups_hourly').selectAll().executeTakeFirstOrThrow())
          .request_count,
      ),
    ).toBe(1);
  });

  // A short write on a full disk leaves such lines (PostgreSQL and the writer thread read segments
  // as they are): one followed by whole rows, or one the segment is sealed on, with no newline.
  it.each([
    { case: 'a malformed line', fragment: '{"id":"short-wri\n', rowAfter: true },
    { case: 'a torn last line', fragment: '{"id":"torn-', rowAfter: false },
  ])('a segment of this process with $case loses only that line', async ({ fragment, rowAfter }) => {
    await clear();
    const dataDir = makeTempDir();
    const recorder = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir });
    for (let i = 0; i < 3; i += 1) await recorder.record(event({ id: `whole-${i}` }));
    const file = path.join(dataDir, 'usage-journal', journalFiles(dataDir)[0]!);
    fs.appendFileSync(file, fragment);
    if (rowAfter) await recorder.record(event({ id: 'whole-3' }));
    await recorder.flushNow();
    expect(await count()).toBe(rowAfter ? 4 : 3);
    expect(recorder.stats()).toMatchObject({ queueDepth: 0, rowsInMemory: 0 });
    expect(journalFiles(dataDir)).toHaveLength(0);
    await recorder.close();
  });

  it('rows recorded in the same turn are written together before any of them resolves', async () => {
    await clear();
    const dataDir = makeTempDir();
    const recorder = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir });
    const pending = [0, 1, 2, 3, 4].map((i) => recorder.record(event({ id: `turn-${i}` })));
    const file = () => {
      const files = journalFiles(dataDir);
      return files.length === 0
        ? ''
        : fs.readFileSync(path.join(dataDir, 'usage-journal', files[0]!), 'utf8');
    };
    expect(file()).toBe('');
    await pending[0];
    const ids = file()
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: string }).id);
    expect(ids).toEqual(['turn-0', 'turn-1', 'turn-2', 'turn-3', 'turn-4']);
    expect(recorder.stats().journalBytes).toBe(Buffer.byteLength(file()));
    await Promise.all(pending);
    await recorder.close();
  });

  it('replays what a dead process left, exactly once, even a segment that was already committed', async () => {
    await clear();
    const dataDir = makeTempDir();
    const first = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir });
    for (let i = 0; i < 10; i += 1) await first.record(event({ id: `replay-a-${i}` }));
    await first.flushNow();
    // A copy of a committed segment, as if the process died between the commit and the delete.
    const committed = path.join(dataDir, 'usage-journal', 'segment-000000000001.jsonl');
    for (let i = 0; i < 10; i += 1) await first.record(event({ id: `replay-b-${i}` }));
    const pending = journalFiles(dataDir);
    expect(pending).toHaveLength(1);
    const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify({ ...event(), id: `replay-a-${i}` }));
    fs.writeFileSync(committed, `${lines.join('\n')}\n{"torn`);
    // `first` is abandoned without close(), like kill -9.
    const second = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir });
    await second.flushNow();
    expect(await count()).toBe(20);
    const rollup = await db()
      .kysely.selectFrom('usage_rollups_hourly')
      .select((eb) => [eb.fn.sum<number>('request_count').as('n'), eb.fn.sum<number>('total_tokens').as('t')])
      .executeTakeFirstOrThrow();
    expect(Number(rollup.n)).toBe(20);
    expect(Number(rollup.t)).toBe(20 * 15);
    expect(journalFiles(dataDir)).toHaveLength(0);
    await second.close();
  });

  /** A handle on the same database whose writes fail on demand: PostgreSQL through a TCP proxy that is
   * cut, SQLite with another connection holding the write lock (and a short busy timeout). */
  async function breakableDb(): Promise<{
    db: Db;
    breakIt: () => Promise<void>;
    close: () => Promise<void>;
  }> {
    if (dialect === 'postgres') {
      const target = new URL(database.url);
      const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      const viaProxy = await openDatabase(proxy.rewrite(database.url));
      return {
        db: viaProxy,
        breakIt: async () => proxy.cut(),
        close: async () => {
          await proxy.close();
          await viaProxy.close().catch(() => {});
        },
      };
    }
    const handle = await openDatabase(database.url);
    await sql`pragma busy_timeout = 50`.execute(handle.kysely);
    const locker = new Sqlite(database.url);
    return {
      db: handle,
      breakIt: async () => {
        locker.exec('begin exclusive');
      },
      close: async () => {
        if (locker.inTransaction) locker.exec('rollback');
        locker.close();
        await handle.close();
      },
    };
  }

  it('keeps memory bounded while the database is down; the backlog waits on disk and arrives later', async () => {
    await clear();
    const dataDir = makeTempDir();
    const broken = await breakableDb();
    await broken.breakIt();
    const recorder = await createUsageRecorder({ db: broken.db, logger, flushMs: 60_000, dataDir });
    const total = 25_000;
    for (let i = 0; i < total; i += 1)
      await recorder.record(event({ id: `outage-${i}`, created_at: BASE + i }));
    await expect(recorder.flushNow()).rejects.toThrow();
    const stats = recorder.stats();
    expect(stats.queueDepth).toBe(total);
    expect(stats.rowsInMemory).toBeLessThanOrEqual(2_000);
    expect(stats.journalBytes).toBeGreaterThan(total * 100);
    await recorder.close();
    await broken.close();
    expect(journalFiles(dataDir).length).toBe(total / 1000);
    expect(await count()).toBe(0);

    const restarted = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir });
    expect(restarted.stats().queueDepth).toBe(total);
    await restarted.flushNow();
    expect(await count()).toBe(total);
    expect(restarted.stats()).toMatchObject({ queueDepth: 0, journalBytes: 0, rowsWritten: total });
    await restarted.close();
  }, 60_000);

  it('writes api_keys.last_used from noteKeyUsed, at most once a minute per key', async () => {
    const user = await createUser(db());
    const key = await createApiKey(db(), { userId: user.id });
    const recorder = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir: makeTempDir() });
    recorder.noteKeyUsed(key.id, BASE);
    await recorder.flushNow();
    const lastUsed = async () =>
      (
        await db()
          .kysely.selectFrom('api_keys')
          .select('last_used')
          .where('id', '=', key.id)
          .executeTakeFirst()
      )?.last_used;
    expect(await lastUsed()).toBe(BASE);
    recorder.noteKeyUsed(key.id, BASE + 30_000);
    await recorder.flushNow();
    expect(await lastUsed()).toBe(BASE);
    recorder.noteKeyUsed(key.id, BASE + 61_000);
    await recorder.flushNow();
    expect(await lastUsed()).toBe(BASE + 61_000);
    await recorder.close();
  });

  it('property: for random usage, replays included, the rollups equal aggregates of the raw rows', async () => {
    const row = fc.record({
      user: fc.constantFrom('u1', 'u2', 'legacy-api-key'),
      source: fc.constantFrom('apikey', 'web', 'legacy'),
      key: fc.constantFrom(null, 'k1', 'k2'),
      keyName: fc.constantFrom('', 'alpha', 'renamed', 'we"ird, {key} \\ NULL é'),
      model: fc.constantFrom('m1', 'm2', 'm3'),
      hour: fc.integer({ min: 0, max: 47 }),
      offset: fc.integer({ min: 0, max: HOUR - 1 }),
      prompt: fc.nat(5000),
      completion: fc.nat(5000),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(row, { minLength: 1, maxLength: 60 }),
        fc.nat(60),
        async (rows, replayFrom) => {
          await clear();
          const dataDir = makeTempDir();
          const recorder = await createUsageRecorder({ db: db(), logger, flushMs: 60_000, dataDir });
          const events = rows.map((r, i) =>
            event({
              id: `prop-${i}`,
              user_id: r.user,
              user_name: `name of ${r.user}`,
              source: r.source,
              api_key_id: r.key,
              api_key_name: r.keyName,
              model: r.model,
              created_at: BASE + r.hour * HOUR + r.offset,
              prompt_tokens: r.prompt,
              completion_tokens: r.completion,
              total_tokens: r.prompt + r.completion,
            }),
          );
          for (const e of events) await recorder.record(e);
          await recorder.flushNow();
          // Replaying a tail of the same rows (a crash between commit and journal delete) changes nothing.
          for (const e of events.slice(replayFrom)) await recorder.record(e);
          await recorder.close();
          const raw = await db()
            .kysely.selectFrom('usage_records')
            .select((eb) => [
              eb.fn.sum<number>('prompt_tokens').as('prompt'),
              eb.fn.sum<number>('completion_tokens').as('completion'),
              eb.fn.sum<number>('total_tokens').as('total'),
              eb.fn.countAll<number>().as('requests'),
            ])
            .executeTakeFirstOrThrow();
          const rolled = await db()
            .kysely.selectFrom('usage_rollups_hourly')
            .select((eb) => [
              eb.fn.sum<number>('prompt_tokens').as('prompt'),
              eb.fn.sum<number>('completion_tokens').as('completion'),
              eb.fn.sum<number>('total_tokens').as('total'),
              eb.fn.sum<number>('request_count').as('requests'),
            ])
            .executeTakeFirstOrThrow();
          expect(Number(raw.requests)).toBe(rows.length);
          // Names round-trip byte for byte (quotes, commas, braces, backslashes in PostgreSQL arrays).
          const names = await db()
            .kysely.selectFrom('usage_records')
            .select('api_key_name')
            .distinct()
            .execute();
          expect(names.map((n) => n.api_key_name).sort()).toEqual(
            [...new Set(rows.map((r) => r.keyName))].sort(),
          );
          for (const field of ['prompt', 'completion', 'total', 'requests'] as const) {
            expect(Number(rolled[field])).toBe(Number(raw[field]));
          }
          // Per group as well: each rollup row equals the sums of its raw rows.
          const hourOf = sql<number>`created_at - (created_at % ${sql.lit(HOUR)})`;
          const groups = await db()
            .kysely.selectFrom('usage_records')
            .select((eb) => [
              hourOf.as('hour'),
              'user_id',
              'source',
              'model',
              'api_key_name',
              eb.fn.coalesce('api_key_id', sql<string>`''`).as('key'),
              eb.fn.sum<number>('total_tokens').as('total'),
              eb.fn.countAll<number>().as('requests'),
            ])
            .groupBy([hourOf, 'user_id', 'source', 'model', 'api_key_name', sql`coalesce(api_key_id, '')`])
            .execute();
          const rollups = await db().kysely.selectFrom('usage_rollups_hourly').selectAll().execute();
          expect(rollups).toHaveLength(groups.length);
          for (const group of groups) {
            const match = rollups.find(
              (r) =>
                Number(r.hour) === Number(group.hour) &&
                r.user_id === group.user_id &&
                r.source === group.source &&
                r.model === group.model &&
                r.api_key_id === group.key &&
                r.api_key_name === group.api_key_name,
            );
            expect(match).toBeDefined();
            expect(Number(match?.total_tokens)).toBe(Number(group.total));
            expect(Number(match?.request_count)).toBe(Number(group.requests));
          }
          fs.rmSync(dataDir, { recursive: true, force: true });
        },
      ),
      { numRuns: 15 },
    );
  }, 60_000);
});

describe('the SQLite writer thread', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
  });
  afterAll(async () => {
    await database?.close();
  });
  const threadRecorder = (dataDir: string) =>
    createUsageRecorder({ db: database.db, logger, flushMs: 60_000, dataDir, sqliteWorker: true });

  it('commits sealed segments it reads itself; no rows are held in memory for it', async () => {
    expect(database.db.describe).not.toContain(':memory:');
    const dataDir = makeTempDir();
    // A segment a dead process left, its last line torn mid-write.
    const journalDir = path.join(dataDir, 'usage-journal');
    fs.mkdirSync(journalDir, { recursive: true });
    fs.writeFileSync(
      path.join(journalDir, 'segment-000000000001.jsonl'),
      `${JSON.stringify({ ...event(), id: 'left-1' })}\n{"id":"torn-`,
    );
    const recorder = await threadRecorder(dataDir);
    await Promise.all(
      Array.from({ length: 2500 }, (_, i) =>
        recorder.record(event({ id: `thread-${i}`, created_at: BASE + i })),
      ),
    );
    expect(recorder.stats().rowsInMemory).toBe(0);
    await recorder.flushNow();
    const ids = await database.db.kysely.selectFrom('usage_records').select('id').execute();
    expect(ids).toHaveLength(2501);
    expect(new Set(ids.map((row) => row.id)).has('left-1')).toBe(true);
    const rollup = await database.db.kysely
      .selectFrom('usage_rollups_hourly')
      .select((eb) => eb.fn.sum<number>('request_count').as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(rollup.n)).toBe(2501);
    expect(recorder.stats()).toMatchObject({
      queueDepth: 0,
      rowsWritten: 2501,
      rowsInMemory: 0,
      journalBytes: 0,
    });
    expect(journalFiles(dataDir)).toHaveLength(0);
    await recorder.close();
  }, 60_000);

  it('a malformed line in a whole segment costs only that line (SQLite refuses it alone)', async () => {
    await database.db.kysely.deleteFrom('usage_records').execute();
    await database.db.kysely.deleteFrom('usage_rollups_hourly').execute();
    const dataDir = makeTempDir();
    const recorder = await threadRecorder(dataDir);
    for (let i = 0; i < 3; i += 1) await recorder.record(event({ id: `whole-${i}`, user_name: 'Zoë 東京' }));
    const file = path.join(dataDir, 'usage-journal', journalFiles(dataDir)[0]!);
    fs.appendFileSync(file, '{"id":"short-wri\n');
    await recorder.record(event({ id: 'whole-3', user_name: 'Zoë 東京' }));
    await recorder.flushNow();
    const rows = await database.db.kysely.selectFrom('usage_records').select(['id', 'user_name']).execute();
    expect(rows.map((row) => row.id).sort()).toEqual(['whole-0', 'whole-1', 'whole-2', 'whole-3']);
    expect(new Set(rows.map((row) => row.user_name))).toEqual(new Set(['Zoë 東京']));
    expect(recorder.stats()).toMatchObject({ queueDepth: 0, rowsWritten: 4, journalBytes: 0 });
    await recorder.close();
  }, 60_000);
});

describe('a PostgreSQL backlog', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase('postgres');
  });
  afterAll(async () => {
    await database?.close();
  });

  it('a row the database refuses as data is set aside, logged and counted; the rows around it commit', async () => {
    const db = database.db;
    const dataDir = makeTempDir();
    const lines: string[] = [];
    const recorder = await createUsageRecorder({
      db,
      logger: createLogger('error', { write: (line: string) => lines.push(line) }),
      flushMs: 60_000,
      dataDir,
    });
    // Written around the gateway's checks: a model name longer than the column holds.
    for (let i = 0; i < 40; i += 1) {
      await recorder.record(
        event({ id: `refused-${i}`, created_at: BASE + i, model: i === 17 ? 'm'.repeat(300) : 'm1' }),
      );
    }
    await recorder.flushNow();
    const stored = await sql<{ id: string }>`select id from usage_records where id like 'refused-%'`.execute(
      db.kysely,
    );
    expect(stored.rows.map((row) => row.id).sort()).toEqual(
      Array.from({ length: 40 }, (_, i) => `refused-${i}`)
        .filter((id) => id !== 'refused-17')
        .sort(),
    );
    expect(recorder.stats()).toMatchObject({
      queueDepth: 0,
      rowsWritten: 39,
      rowsRefused: 1,
      flushFailures: 0,
    });
    const file = path.join(dataDir, 'usage-refused.jsonl');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const setAside = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(setAside.map((line) => (JSON.parse(line) as UsageRow).id)).toEqual(['refused-17']);
    expect(lines.some((line) => line.includes('refused-17') && line.includes('value too long'))).toBe(true);
    await recorder.close();
  });

  // Two statements at once need a PostgreSQL server (HAS_POSTGRES_SERVER): PGlite runs one at a time.
  it.skipIf(!HAS_POSTGRES_SERVER)(
    'commits in two transactions at once; one that fails is retried, nothing lost or doubled (needs a PostgreSQL server)',
    async () => {
      const db = database.db;
      await db.kysely.deleteFrom('usage_records').execute();
      await db.kysely.deleteFrom('usage_rollups_hourly').execute();
      // Each insert into the raw table waits 0.5 s at its end (the other transaction, on the same
      // hourly rollup rows, waits for its lock meanwhile), and the first transaction holding row
      // lane-0 fails once.
      await sql`create sequence lane_failures`.execute(db.kysely);
      await sql
        .raw(`create function lane_probe() returns trigger language plpgsql as $fn$
        begin
          perform pg_sleep(0.5);
          if exists (select 1 from new_rows where id = 'lane-0') then
            if nextval('lane_failures') = 1 then raise exception 'injected failure'; end if;
          end if;
          return null;
        end $fn$`)
        .execute(db.kysely);
      await sql`create trigger lane_probe after insert on usage_records referencing new table as new_rows
      for each statement execute function lane_probe()`.execute(db.kysely);

      // A backlog of 12 segments, left on disk while the database was unreachable.
      const dataDir = makeTempDir();
      const target = new URL(database.url);
      const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      const viaProxy = await openDatabase(proxy.rewrite(database.url));
      await proxy.cut();
      const down = await createUsageRecorder({ db: viaProxy, logger, flushMs: 60_000, dataDir });
      const total = 12_000;
      for (let i = 0; i < total; i += 1) await down.record(event({ id: `lane-${i}`, created_at: BASE + i }));
      await expect(down.flushNow()).rejects.toThrow();
      await down.close();
      await proxy.close();
      await viaProxy.close().catch(() => {});

      const recorder = await createUsageRecorder({ db, logger, flushMs: 60_000, dataDir });
      let activeAtOnce = 0;
      let watching = true;
      const watch = (async () => {
        while (watching) {
          const result = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where state = 'active' and query like '%json_populate_recordset%' and pid <> pg_backend_pid()`.execute(
            db.kysely,
          );
          activeAtOnce = Math.max(activeAtOnce, Number(result.rows[0]?.n ?? 0));
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      try {
        // Replayed at start-up: the first two transactions run at once, the one holding lane-0 fails,
        // and the retry (one segment a transaction while failing) commits the rest.
        await recorder.flushNow();
      } finally {
        watching = false;
        await watch;
      }
      expect(recorder.stats().flushFailures).toBe(1);
      await recorder.close();

      expect(activeAtOnce).toBe(2);
      const stored = await sql<{ n: number; distinct_ids: number }>`select count(*)::int as n,
      count(distinct id)::int as distinct_ids from usage_records`.execute(db.kysely);
      expect(stored.rows[0]).toEqual({ n: total, distinct_ids: total });
      const rolled = await sql<{
        n: string;
      }>`select sum(request_count) as n from usage_rollups_hourly`.execute(db.kysely);
      expect(Number(rolled.rows[0]?.n)).toBe(total);
      expect(recorder.stats()).toMatchObject({ queueDepth: 0, journalBytes: 0, rowsWritten: total });
    },
    60_000,
  );
});
