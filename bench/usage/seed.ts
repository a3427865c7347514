import { sql } from 'kysely';
import { hashSecret } from '../../src/server/auth/hash.ts';
import type { Db } from '../../src/server/db/connection.ts';
import { rebuildDailyRollupStatements } from '../../src/server/db/migrations/20261128T0030-usage-daily-rollups.ts';
import { SEED_DAY_VERSIONS } from '../../src/server/db/migrations/20261128T0031-usage-day-versions.ts';
import { UNSOURCED_INDEX } from '../../src/server/db/migrations/20261128T0032-usage-raw-indexes.ts';
import {
  dropRollupTriggerStatements,
  rollupTriggerStatements,
} from '../../src/server/db/migrations/20261201T0700-pg-statement-rollup-triggers.ts';

/**
 * Bulk seeding for the usage bench: raw rows generated inside the database (PostgreSQL
 * generate_series, SQLite a recursive CTE) in 1 M-row transactions, with the raw table's secondary
 * indexes dropped during the load and rebuilt after; then the hourly rollups in one INSERT … SELECT …
 * GROUP BY and the daily ones from those (triggers off meanwhile, so nothing is counted twice).
 *
 * Data: `users` users, `keys` keys (key k belongs to user k % users; 5 % revoked, the last 5 %
 * deleted), `models` models, rows spread evenly over `days` days ending at `now`: 80 % API-key
 * traffic, 15 % web (any user), 5 % legacy (the synthetic legacy user).
 */

export interface SeedPlan {
  rows: number;
  users: number;
  keys: number;
  models: number;
  days: number;
  now: number;
  hmacSecret: string;
}

export interface SeedOutcome {
  seconds: { raw: number; indexes: number; rollups: number };
  counts: Record<string, number>;
  adminKey: string;
  userKey: string;
  userId: string;
  userKeyId: string;
}

const CHUNK = 1_000_000;
// The raw table's secondary indexes as the migrations leave them: [name, columns, predicate].
const RAW_INDEXES: [string, string, string?][] = [
  ['idx_usage_user_time', 'user_id, created_at'],
  ['idx_usage_time', 'created_at'],
  ['idx_usage_apikey', 'api_key_id'],
  [UNSOURCED_INDEX.name, UNSOURCED_INDEX.columns, UNSOURCED_INDEX.where],
];

function rowSelect(plan: SeedPlan): string {
  const span = plan.days * 86_400_000;
  const start = plan.now - span;
  // `+ i / 20` decorrelates the key and the web user from `i % 20`, which picks the source.
  const k = `((i * 761 + i / 20) % ${plan.keys})`;
  const src = `(i % 20)`;
  const user = `(case when ${src} < 16 then 'bench-user-' || (${k} % ${plan.users})
                      when ${src} < 19 then 'bench-user-' || ((i * 7 + i / 20) % ${plan.users})
                      else 'legacy-api-key' end)`;
  const userName = `(case when ${src} < 16 then 'User ' || (${k} % ${plan.users})
                          when ${src} < 19 then 'User ' || ((i * 7 + i / 20) % ${plan.users})
                          else 'API Key User' end)`;
  return `select 'b' || i, ${user}, ${userName},
      case when ${src} < 16 then 'apikey' when ${src} < 19 then 'web' else 'legacy' end,
      case when ${src} < 16 then 'bench-key-' || ${k} else null end,
      case when ${src} < 16 then 'key ' || ${k} else '' end,
      'model-' || (((i / 1000) * 7 + (i / 3)) % ${plan.models}),
      '/v1/chat/completions',
      50 + (i * 37) % 500, 10 + (i * 53) % 300, 60 + (i * 37) % 500 + (i * 53) % 300,
      100 + i % 900,
      ${start} + (i * ${span}) / ${plan.rows},
      'provider', 0, i % 2, 'default'`;
}

const COLUMNS = `(id, user_id, user_name, source, api_key_id, api_key_name, model, endpoint, prompt_tokens,
  completion_tokens, total_tokens, duration_ms, created_at, usage_origin, aborted, stream, upstream)`;

async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

export async function seedUsage(db: Db, plan: SeedPlan, log: (line: string) => void): Promise<SeedOutcome> {
  const k = db.kysely;
  const now = plan.now;
  // Users, keys, the two callers.
  const adminKey = `kt-${'a'.repeat(64)}`;
  const userKey = `kt-${'b'.repeat(64)}`;
  const users = Array.from({ length: plan.users }, (_, u) => ({
    id: `bench-user-${u}`,
    email: `user${u}@bench.test`,
    name: `User ${u}`,
    avatar_url: '',
    provider: 'local',
    subject: `user${u}@bench.test`,
    password_hash: null,
    role: 'user' as 'admin' | 'user',
    status: 'active' as const,
    created_at: now,
    updated_at: now,
  }));
  users.push({
    ...users[0]!,
    id: 'bench-admin',
    email: 'admin@bench.test',
    subject: 'admin@bench.test',
    name: 'Admin',
    role: 'admin' as const,
  });
  for (let i = 0; i < users.length; i += 100)
    await k
      .insertInto('users')
      .values(users.slice(i, i + 100))
      .execute();
  const keys = [];
  for (let i = 0; i < plan.keys; i++) {
    if (i >= plan.keys * 0.95) continue; // deleted keys: usage only
    keys.push({
      id: `bench-key-${i}`,
      user_id: `bench-user-${i % plan.users}`,
      name: `key ${i}`,
      key_hash: i === 0 ? hashSecret(plan.hmacSecret, userKey) : `hash-${i}`,
      key_prefix: `kt-${String(i).padStart(9, '0')}`,
      role: 'user',
      created_at: now,
      expires_at: null,
      last_used: null,
      revoked_at: i % 20 === 19 ? now : null,
    });
  }
  keys.push({
    ...keys[0]!,
    id: 'bench-admin-key',
    user_id: 'bench-admin',
    name: 'admin',
    key_hash: hashSecret(plan.hmacSecret, adminKey),
    revoked_at: null,
  });
  for (let i = 0; i < keys.length; i += 100)
    await k
      .insertInto('api_keys')
      .values(keys.slice(i, i + 100))
      .execute();

  for (const [name] of RAW_INDEXES) await sql.raw(`drop index if exists ${name}`).execute(k);
  const raw = await timed(async () => {
    for (let from = 1; from <= plan.rows; from += CHUNK) {
      const to = Math.min(plan.rows, from + CHUNK - 1);
      const statement =
        db.dialect === 'postgres'
          ? `insert into usage_records ${COLUMNS} ${rowSelect(plan)} from generate_series(${from}::bigint, ${to}::bigint) as s(i)`
          : `insert into usage_records ${COLUMNS} with recursive s(i) as (select ${from} union all select i + 1 from s where i < ${to}) ${rowSelect(plan)} from s`;
      await k.transaction().execute(async (trx) => {
        await sql.raw(statement).execute(trx);
      });
      log(`  raw rows ${to.toLocaleString()} / ${plan.rows.toLocaleString()}`);
    }
  });
  const indexes = await timed(async () => {
    for (const [name, columns, where] of RAW_INDEXES) {
      const predicate = where ? ` where ${where}` : '';
      await sql
        .raw(`create index if not exists ${name} on usage_records (${columns})${predicate}`)
        .execute(k);
    }
  });
  log(`  raw indexes rebuilt in ${indexes.toFixed(1)} s`);
  const rollups = await timed(async () => {
    await k.transaction().execute(async (trx) => {
      if (db.dialect === 'postgres') await sql.raw(`set local work_mem = '512MB'`).execute(trx);
      for (const statement of dropRollupTriggerStatements(db.dialect)) await sql.raw(statement).execute(trx);
      await sql
        .raw(
          `insert into usage_rollups_hourly (hour, user_id, user_name, source, api_key_id, api_key_name, model,
             prompt_tokens, completion_tokens, total_tokens, request_count, last_used)
           select created_at - (created_at % 3600000), user_id, user_name, source, coalesce(api_key_id, ''),
             api_key_name, model, sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), count(*),
             max(created_at)
           from usage_records
           group by created_at - (created_at % 3600000), user_id, user_name, source, coalesce(api_key_id, ''),
             api_key_name, model`,
        )
        .execute(trx);
      for (const statement of rebuildDailyRollupStatements()) await sql.raw(statement).execute(trx);
      await sql.raw(SEED_DAY_VERSIONS).execute(trx);
      // The current triggers (the seeded rows have no cost, so their rollups' cost sums keep their
      // default 0). A trigger's function survives its drop; re-creating it is harmless.
      for (const statement of rollupTriggerStatements(db.dialect)) await sql.raw(statement).execute(trx);
    });
    await sql.raw('analyze').execute(k);
  });
  log(`  rollups built in ${rollups.toFixed(1)} s`);
  const counts: Record<string, number> = {};
  for (const table of [
    'usage_records',
    'usage_rollups_hourly',
    'usage_rollups_daily_sources',
    'usage_rollups_daily_models',
  ] as const) {
    const row = await k
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    counts[table] = Number(row?.n ?? 0);
  }
  return {
    seconds: { raw, indexes, rollups },
    counts,
    adminKey,
    userKey,
    userId: 'bench-user-0',
    userKeyId: 'bench-key-0',
  };
}
