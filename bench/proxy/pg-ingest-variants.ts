import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { openDatabase } from '../../src/server/db/connection.ts';
import { migrateToLatest } from '../../src/server/db/migrate.ts';
import * as statementTriggers from '../../src/server/db/migrations/20261201T0700-pg-statement-rollup-triggers.ts';
import { insertUsageJsonArrayPostgres } from '../../src/server/usage/ingest.repository.ts';
import { usageRowId } from '../../src/server/usage/row-id.ts';
import { benchUsageEvent } from './recorder-bench.ts';

/**
 * Where a PostgreSQL usage commit spends its time (issue #17, item 4):
 * `node --import tsx bench/proxy/pg-ingest-variants.ts [rows per batch, default 1000] [rounds, default 7]`.
 * In a fresh schema of KEYTALLY_BENCH_DATABASE_URL, batches of the recorder bench's row mix go
 * through each variant in turn, 7 interleaved rounds; prints each one's median ms per batch [range]:
 * - transfer: the batch as one parameter, `length($1::text)` (the round trip and the bytes);
 * - parse: `json_populate_recordset` alone (`count(*)`); to-recordset: `json_to_recordset` alone;
 * - raw-insert: the raw rows only (`insert … on conflict (id) do nothing`, five indexes);
 * - current: the recorder's statement (raw rows + hourly rollups + their daily triggers);
 * - current-row-triggers: the same in a second schema where the daily rollups are kept by the row
 *   triggers they had before migration 20261201T0700 (its `down`);
 * - copy-staging: `COPY` of the JSON lines into a temp table, then the raw insert from it.
 */
const PG_URL = process.env.KEYTALLY_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROWS = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 7);
const COLUMNS =
  'id text, user_id text, user_name text, source text, api_key_id text, api_key_name text, model text, endpoint text, prompt_tokens int8, completion_tokens int8, total_tokens int8, duration_ms int8, created_at int8, usage_origin text, aborted int4, stream int4, upstream text, cached_tokens int8, cache_write_tokens int8, reasoning_tokens int8, cost_nanos int8, price_source text';

const schema = `kt_bench_ingest_${Date.now()}`;
const admin = new pg.Client({ connectionString: PG_URL });
await admin.connect();
await admin.query(`create schema ${schema}`);
const url = new URL(PG_URL);
url.searchParams.set('options', `-c search_path=${schema}`);
const db = await openDatabase(url.toString());
// The same schema with the daily rollups kept by the older row triggers.
const rowSchema = `${schema}_rows`;
await admin.query(`create schema ${rowSchema}`);
const rowUrl = new URL(PG_URL);
rowUrl.searchParams.set('options', `-c search_path=${rowSchema}`);
const rowDb = await openDatabase(rowUrl.toString());
const client = new pg.Client({ connectionString: url.toString() });
try {
  await migrateToLatest(db);
  await migrateToLatest(rowDb);
  await statementTriggers.down(rowDb.kysely as Kysely<unknown>);
  await client.connect();
  const base = Date.now() - 3_600_000;
  let seq = 0;
  /** One batch as JSON lines (the journal's format). */
  const makeLines = (): string => {
    const lines: string[] = [];
    for (let k = 0; k < ROWS; k += 1) {
      const i = seq++;
      lines.push(
        JSON.stringify({ id: usageRowId(), ...benchUsageEvent(i, base), created_at: base + (i % 1000) }),
      );
    }
    return `${lines.join('\n')}\n`;
  };
  const prepared = Array.from({ length: ROUNDS * 9 + 3 }, makeLines);
  const next = () => prepared.pop() ?? makeLines();
  const asArray = (lines: string) => Buffer.from(`[${lines.trimEnd().replaceAll('\n', ',')}]`);
  const variants: Record<string, () => Promise<unknown>> = {
    transfer: () => client.query('select length($1::text)', [asArray(next())]),
    parse: () =>
      client.query('select count(*) from json_populate_recordset(null::usage_records, $1::text::json)', [
        asArray(next()),
      ]),
    'to-recordset': () =>
      client.query(`select count(*) from json_to_recordset($1::text::json) as x(${COLUMNS})`, [
        asArray(next()),
      ]),
    'raw-insert': () =>
      client.query(
        'insert into usage_records select * from json_populate_recordset(null::usage_records, $1::text::json) on conflict (id) do nothing',
        [asArray(next())],
      ),
    current: () => insertUsageJsonArrayPostgres(db, asArray(next())),
    'current-row-triggers': () => insertUsageJsonArrayPostgres(rowDb, asArray(next())),
    // Two batches committed at once on two connections (their rows/s below count both).
    'current-x2': () =>
      Promise.all([
        insertUsageJsonArrayPostgres(db, asArray(next())),
        insertUsageJsonArrayPostgres(db, asArray(next())),
      ]),
  };
  /** The batch as COPY text rows (tab-separated, \N for null), built the way a writer thread would. */
  const columns = COLUMNS.split(', ').map((column) => column.split(' ')[0] as string);
  const asCopyText = (lines: string) => {
    let out = '';
    for (const line of lines.trimEnd().split('\n')) {
      const row = JSON.parse(line) as Record<string, unknown>;
      out += `${columns
        .map((column) => {
          const value = row[column];
          if (value === null || value === undefined) return '\\N';
          return String(value).replace(/[\\\t\n\r]/g, (c) =>
            c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\',
          );
        })
        .join('\t')}\n`;
    }
    return out;
  };
  variants['copy-direct'] = async () => {
    const text = asCopyText(next());
    await client.query('begin');
    await pipeline(
      Readable.from([Buffer.from(text)]),
      client.query(copyFrom(`copy usage_records (${columns.join(', ')}) from stdin`)),
    );
    await client.query('commit');
  };
  for (let i = 0; i < 3; i += 1) await variants.current?.();
  const times: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [name, run] of Object.entries(variants)) {
      const started = performance.now();
      await run();
      const list = times[name] ?? [];
      list.push(performance.now() - started);
      times[name] = list;
    }
  }
  // Last, the recorder's statement without the raw table's secondary indexes (dropped, then made
  // again): what they cost a commit.
  const indexes = await client.query<{ indexdef: string; indexname: string }>(
    "select indexname, indexdef from pg_indexes where schemaname = current_schema() and tablename = 'usage_records' and indexname not like '%pkey'",
  );
  for (const { indexname } of indexes.rows) await client.query(`drop index ${indexname}`);
  for (let round = 0; round < ROUNDS; round += 1) {
    const started = performance.now();
    await variants.current?.();
    const list = times['current-pk-only'] ?? [];
    list.push(performance.now() - started);
    times['current-pk-only'] = list;
  }
  for (const { indexdef } of indexes.rows) await client.query(indexdef);
  for (const [name, values] of Object.entries(times)) {
    values.sort((a, b) => a - b);
    const median = values[Math.floor(values.length / 2)] ?? 0;
    console.log(
      `${name.padEnd(16)} ${median.toFixed(1).padStart(7)} ms [${values[0]?.toFixed(1)}..${values.at(-1)?.toFixed(1)}]  ${Math.round(((name.endsWith('-x2') ? 2 : 1) * ROWS * 1000) / median)} rows/s`,
    );
  }
} finally {
  await client.end().catch(() => {});
  await db.close();
  await rowDb.close();
  await admin.query(`drop schema if exists ${schema} cascade`);
  await admin.query(`drop schema if exists ${rowSchema} cascade`);
  await admin.end();
}
