import { randomUUID } from 'node:crypto';
import { LEGACY_USER_ID, LEGACY_USER_NAME } from '../auth/context.ts';
import { hashSecret, randomHex } from '../auth/hash.ts';
import { hashPassword } from '../auth/password.ts';
import { PriceBook } from '../cost/price-book.ts';
import { priceUsageRow } from '../cost/pricing.ts';
import { microsOf } from '../cost/rates.ts';
import type { Db } from '../db/connection.ts';
import type { NewApiKeyRow, PriceRow, UsersTable } from '../db/schema.ts';
import { insertUsageBatch, type UsageRow } from '../usage/ingest.repository.ts';
import type { UsageEvent } from '../usage/recorder.ts';

/**
 * `keytally seed-demo`: 30 days of sample usage in an empty database, so the dashboard can be
 * explored before any real traffic. Everything it writes is labelled: user names end in "(demo)",
 * models start with "demo-", and raw rows carry `upstream = 'seed-demo'`.
 */

export class DemoSeedRefused extends Error {}

export const DEMO_DAYS = 30;
export const DEMO_UPSTREAM = 'seed-demo';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface DemoUser {
  key: string;
  name: string;
  email: string;
  role: 'admin' | 'user';
  /** Chats in the web UI per weekday. */
  webPerDay: number;
}

interface DemoKey {
  user: string;
  name: string;
  /** Requests per weekday at the start of the window; grows by `trend` per day. */
  perDay: number;
  trend: number;
  model: string;
  /** Typical prompt size: agents and RAG send long prompts, chat bots short ones. */
  promptTokens: number;
  completionTokens: number;
  /** Days before now the key was revoked (its traffic stops then). */
  revokedDaysAgo?: number;
  /** Runs around the clock (CI, batch) rather than in working hours. */
  allDay?: boolean;
}

const USERS: DemoUser[] = [
  { key: 'admin', name: 'Demo Admin', email: 'admin@demo.keytally', role: 'admin', webPerDay: 4 },
  { key: 'alice', name: 'Alice Chen (demo)', email: 'alice@demo.keytally', role: 'user', webPerDay: 9 },
  { key: 'bob', name: 'Bob Martin (demo)', email: 'bob@demo.keytally', role: 'user', webPerDay: 5 },
  { key: 'carol', name: 'Carol Diaz (demo)', email: 'carol@demo.keytally', role: 'user', webPerDay: 12 },
];

const MODELS = ['demo-llama-3.1-8b', 'demo-qwen2.5-coder-7b', 'demo-mistral-small', 'demo-embed-small'];

/**
 * Admin prices for the demo models (USD per million tokens), so a new user sees cost at once; the
 * built-in `demo` model is priced too, so live demo traffic shows cost as well.
 */
export const DEMO_PRICES: readonly { model: string; input: number; output: number }[] = [
  { model: 'demo-llama-3.1-8b', input: 0.05, output: 0.08 },
  { model: 'demo-qwen2.5-coder-7b', input: 0.07, output: 0.16 },
  { model: 'demo-mistral-small', input: 0.2, output: 0.6 },
  { model: 'demo-embed-small', input: 0.02, output: 0 },
  { model: 'demo', input: 0.1, output: 0.3 },
];

const KEYS: DemoKey[] = [
  {
    user: 'alice',
    name: 'alice-notebook',
    perDay: 25,
    trend: 0.5,
    model: MODELS[0]!,
    promptTokens: 600,
    completionTokens: 350,
  },
  {
    user: 'alice',
    name: 'alice-ci',
    perDay: 60,
    trend: 1.5,
    model: MODELS[1]!,
    promptTokens: 1400,
    completionTokens: 500,
    allDay: true,
  },
  {
    user: 'alice',
    name: 'alice-eval-harness',
    perDay: 15,
    trend: 0,
    model: MODELS[2]!,
    promptTokens: 2200,
    completionTokens: 120,
  },
  {
    user: 'bob',
    name: 'bob-laptop',
    perDay: 18,
    trend: 0.2,
    model: MODELS[0]!,
    promptTokens: 500,
    completionTokens: 400,
  },
  {
    user: 'bob',
    name: 'bob-slackbot',
    perDay: 45,
    trend: 1,
    model: MODELS[2]!,
    promptTokens: 300,
    completionTokens: 180,
  },
  {
    user: 'bob',
    name: 'bob-rag-indexer',
    perDay: 80,
    trend: -1,
    model: MODELS[3]!,
    promptTokens: 900,
    completionTokens: 0,
    allDay: true,
  },
  {
    user: 'bob',
    name: 'bob-old-script',
    perDay: 30,
    trend: 0,
    model: MODELS[0]!,
    promptTokens: 700,
    completionTokens: 300,
    revokedDaysAgo: 11,
  },
  {
    user: 'carol',
    name: 'carol-ide',
    perDay: 70,
    trend: 2,
    model: MODELS[1]!,
    promptTokens: 1800,
    completionTokens: 260,
  },
  {
    user: 'carol',
    name: 'carol-batch-jobs',
    perDay: 40,
    trend: 0.5,
    model: MODELS[0]!,
    promptTokens: 1200,
    completionTokens: 900,
    allDay: true,
  },
  {
    user: 'carol',
    name: 'carol-agents',
    perDay: 20,
    trend: 3,
    model: MODELS[2]!,
    promptTokens: 3500,
    completionTokens: 700,
  },
  {
    user: 'admin',
    name: 'admin-monitoring',
    perDay: 24,
    trend: 0,
    model: MODELS[0]!,
    promptTokens: 40,
    completionTokens: 8,
    allDay: true,
  },
  {
    user: 'admin',
    name: 'admin-smoke-tests',
    perDay: 6,
    trend: 0,
    model: MODELS[2]!,
    promptTokens: 250,
    completionTokens: 150,
  },
];

/** A small deterministic PRNG (mulberry32), so two seeds of the same day look alike. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface SeedDemoOptions {
  now?: number;
  adminEmail?: string;
  adminPassword?: string;
}

export interface SeedDemoResult {
  users: number;
  keys: number;
  usageRows: number;
  totalTokens: number;
  adminEmail: string;
  /** Set when the password was generated here (print it once). */
  generatedPassword: string | null;
}

export async function seedDemo(
  db: Db,
  hmacSecret: string,
  options: SeedDemoOptions = {},
): Promise<SeedDemoResult> {
  const users = await db.kysely
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  const usage = await db.kysely
    .selectFrom('usage_records')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  const userCount = Number(users?.n ?? 0);
  const usageCount = Number(usage?.n ?? 0);
  if (userCount > 0 || usageCount > 0) {
    throw new DemoSeedRefused(
      `seed-demo only fills an empty database, and this one has ${userCount} user(s) and ${usageCount} usage row(s); point it at a fresh --data-dir or --database-url`,
    );
  }

  const now = options.now ?? Date.now();
  const random = createRandom(Math.floor(now / DAY));
  const adminEmail = (options.adminEmail ?? USERS[0]!.email).trim().toLowerCase();
  const generatedPassword = options.adminPassword ? null : `demo-${randomHex(9)}`;
  const adminPasswordHash = await hashPassword(options.adminPassword ?? generatedPassword ?? '');

  const userRows = new Map<string, UsersTable>();
  for (const user of USERS) {
    const email = user.role === 'admin' ? adminEmail : user.email;
    userRows.set(user.key, {
      id: randomUUID(),
      email,
      name: user.name,
      avatar_url: '',
      provider: 'local',
      subject: email,
      // Only the admin can sign in; the other demo users exist to own keys and traffic.
      password_hash: user.role === 'admin' ? adminPasswordHash : null,
      role: user.role,
      status: 'active',
      created_at: now - (DEMO_DAYS + 2) * DAY,
      updated_at: now - (DEMO_DAYS + 2) * DAY,
    });
  }

  const keyRows: NewApiKeyRow[] = KEYS.map((key) => {
    const owner = userRows.get(key.user)!;
    const plaintext = `kt-${randomHex(32)}`; // never shown: demo keys are not meant to be used
    return {
      id: randomUUID(),
      user_id: owner.id,
      name: key.name,
      key_hash: hashSecret(hmacSecret, plaintext),
      key_prefix: plaintext.slice(0, 12),
      role: owner.role,
      created_at: now - (DEMO_DAYS + 1) * DAY,
      expires_at: null,
      last_used: null,
      revoked_at: key.revokedDaysAgo === undefined ? null : now - key.revokedDaysAgo * DAY,
    };
  });

  const rows: UsageRow[] = [];
  const start = now - DEMO_DAYS * DAY;
  const pushRow = (
    at: number,
    user: UsersTable | { id: string; name: string },
    source: 'apikey' | 'web' | 'legacy',
    model: string,
    prompt: number,
    completion: number,
    key?: NewApiKeyRow,
  ) => {
    const jitter = (value: number) => Math.max(0, Math.round(value * (0.4 + random() * 1.2)));
    const promptTokens = Math.max(1, jitter(prompt));
    const completionTokens = jitter(completion);
    rows.push({
      id: randomUUID(),
      user_id: user.id,
      user_name: user.name,
      source,
      api_key_id: key?.id ?? null,
      api_key_name: key?.name ?? '',
      model,
      endpoint: completion === 0 ? '/v1/embeddings' : '/v1/chat/completions',
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      duration_ms: Math.round(150 + completionTokens * (8 + random() * 10)),
      created_at: at,
      usage_origin: 'provider',
      aborted: 0,
      stream: completion === 0 ? 0 : 1,
      upstream: DEMO_UPSTREAM,
    });
  };
  // Working hours (UTC 08-19) on weekdays get most of the human traffic.
  const timeIn = (dayStart: number, allDay: boolean) => {
    const hour = allDay ? random() * 24 : 8 + random() * 11;
    return dayStart + Math.floor(hour * HOUR);
  };

  for (let day = 0; day <= DEMO_DAYS; day++) {
    const dayStart = Math.floor(start / DAY) * DAY + day * DAY;
    const weekday = new Date(dayStart).getUTCDay();
    const weekend = weekday === 0 || weekday === 6;
    KEYS.forEach((spec, index) => {
      const key = keyRows[index]!;
      const owner = userRows.get(spec.user)!;
      const rate = Math.max(0, spec.perDay + spec.trend * day) * (weekend && !spec.allDay ? 0.2 : 1);
      const count = Math.round(rate * (0.7 + random() * 0.6));
      for (let i = 0; i < count; i++) {
        const at = timeIn(dayStart, spec.allDay === true);
        if (at < start || at > now) continue;
        const revokedAt = key.revoked_at ?? null;
        if (revokedAt !== null && at >= revokedAt) continue;
        pushRow(at, owner, 'apikey', spec.model, spec.promptTokens, spec.completionTokens, key);
        key.last_used = Math.max(key.last_used ?? 0, at);
      }
    });
    for (const user of USERS) {
      const owner = userRows.get(user.key)!;
      const count = Math.round(user.webPerDay * (weekend ? 0.3 : 1) * (0.5 + random()));
      for (let i = 0; i < count; i++) {
        const at = timeIn(dayStart, false);
        if (at < start || at > now) continue;
        pushRow(at, owner, 'web', MODELS[Math.floor(random() * 3)]!, 450, 380);
      }
    }
    // A shared legacy key still used by an old cron job.
    const legacyCount = Math.round(12 * (0.6 + random() * 0.8));
    for (let i = 0; i < legacyCount; i++) {
      const at = timeIn(dayStart, true);
      if (at < start || at > now) continue;
      pushRow(at, { id: LEGACY_USER_ID, name: LEGACY_USER_NAME }, 'legacy', MODELS[0]!, 800, 200);
    }
  }

  const priceRows: PriceRow[] = DEMO_PRICES.map((price) => ({
    id: randomUUID(),
    model: price.model,
    input_micros: microsOf(price.input),
    output_micros: microsOf(price.output),
    cached_input_micros: null,
    cache_write_micros: null,
    effective_from: start - DAY,
    created_at: now,
    created_by: userRows.get(USERS[0]!.key)!.id,
  }));
  // Each row priced as the gateway would have priced it when it was recorded.
  const book = new PriceBook();
  book.setApiPrices(
    priceRows.map((row) => ({
      id: row.id,
      model: row.model,
      input: row.input_micros,
      output: row.output_micros,
      cachedInput: null,
      cacheWrite: null,
      effectiveFrom: row.effective_from,
      origin: 'api',
    })),
  );
  for (const row of rows) priceUsageRow(book, null, row as UsageEvent);

  await db.kysely.transaction().execute(async (trx) => {
    await trx
      .insertInto('users')
      .values([...userRows.values()])
      .execute();
    await trx.insertInto('api_keys').values(keyRows).execute();
    await trx.insertInto('prices').values(priceRows).execute();
  });
  await insertUsageBatch(db, rows);
  return {
    users: userRows.size,
    keys: keyRows.length,
    usageRows: rows.length,
    totalTokens: rows.reduce((sum, row) => sum + Number(row.total_tokens ?? 0), 0),
    adminEmail,
    generatedPassword,
  };
}
