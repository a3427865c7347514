import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/server/db/connection.ts';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import { runCliInProcess } from '../helpers/cli.ts';
import { DIALECTS, makeTempDir } from '../helpers/db.ts';
import { createTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { usageRow } from '../usage/helpers.ts';

const AT = Date.UTC(2026, 10, 15, 12, 0, 0);

/** `keytally …` in this process, with an HMAC secret unless `env` brings one. */
const runInProcess = (args: string[], env: Record<string, string>) =>
  runCliInProcess(args, { KEYTALLY_HMAC_SECRET: 'x'.repeat(40), ...env });

describe.each(DIALECTS)('keytally usage reprice on %s', (dialect) => {
  let dataDir = '';
  let postgres: TestPostgres | undefined;
  const env: Record<string, string> = {};

  beforeAll(async () => {
    dataDir = makeTempDir();
    env.KEYTALLY_DATA_DIR = dataDir;
    if (dialect === 'postgres') {
      postgres = await createTestPostgres();
      env.KEYTALLY_DATABASE_URL = postgres.url;
    }
    const db = await openDatabase(env.KEYTALLY_DATABASE_URL ?? `${dataDir}/keytally.db`);
    await migrateToLatest(db);
    await insertUsageBatch(db, [
      usageRow({ user_id: 'u1', model: 'local', created_at: AT }),
      usageRow({ user_id: 'u1', model: 'local', created_at: AT + 1000 }),
      usageRow({ user_id: 'u1', model: 'local', created_at: AT + 40 * 86_400_000 }),
    ]);
    // 10 × $1 + 5 × $2 per million tokens = 20,000 nano-USD per row.
    await db.kysely
      .insertInto('prices')
      .values({
        id: randomUUID(),
        model: 'local',
        input_micros: 1_000_000,
        output_micros: 2_000_000,
        cached_input_micros: null,
        cache_write_micros: null,
        effective_from: 0,
        created_at: AT,
        created_by: 'test',
      })
      .execute();
    await db.close();
  });
  afterAll(async () => {
    await postgres?.cleanup();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('reprices the range, says what changed, and changes nothing the second time', async () => {
    const args = ['usage', 'reprice', '--from', '2026-11-01', '--to', '2026-12-01'];
    // The progress bar goes to stderr directly (a line at the end when stderr is not a terminal).
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const first = await runInProcess(args, env);
    const progress = stderr.mock.calls.map(([chunk]) => String(chunk)).join('');
    stderr.mockRestore();
    expect(first.code).toBe(0);
    expect(progress).toContain('[##############################] 2/2 rows');
    expect(first.output).toContain('repriced 2 rows: 2 changed, cost +$0.00004');
    const second = await runInProcess(args, env);
    expect(second.output).toContain('repriced 2 rows: 0 changed, cost +$0');
  });

  it('refuses a bad range naming the flag', async () => {
    const bad = await runInProcess(['usage', 'reprice', '--from', 'yesterday', '--to', '2026-12-01'], env);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('--from');
    const backwards = await runInProcess(
      ['usage', 'reprice', '--from', '2026-12-01', '--to', '2026-11-01'],
      env,
    );
    expect(backwards.code).toBe(2);
    expect(backwards.output).toContain('--to: must be after --from');
  });
});
