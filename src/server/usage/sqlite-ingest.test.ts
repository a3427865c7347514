import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db.ts';
import { segmentsAsJsonArray } from './journal.ts';
import { insertUsageRowsSqlite, insertUsageSegmentsSqlite, type UsageRow } from './sqlite-ingest.ts';

/**
 * The SQLite writer thread's path: journal segments' lines parsed by SQLite (insertUsageSegmentsSqlite).
 * It must store exactly what binding each row's values does (insertUsageRowsSqlite, the event loop's
 * path).
 */

const BASE = Date.UTC(2026, 10, 1);

function lines(rows: readonly object[]): Buffer {
  return Buffer.from(rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
}

describe('SQLite ingest from journal lines', () => {
  let json: TestDatabase;
  let bound: TestDatabase;
  beforeAll(async () => {
    [json, bound] = await Promise.all([createTestDatabase('sqlite'), createTestDatabase('sqlite')]);
  });
  afterAll(async () => {
    await Promise.all([json?.close(), bound?.close()]);
  });
  const handle = (database: TestDatabase) => {
    const sqlite = database.db.sqlite;
    if (!sqlite) throw new Error('an SQLite test database has a better-sqlite3 handle');
    return sqlite;
  };
  const clear = () => {
    for (const database of [json, bound]) {
      handle(database).exec(
        'delete from usage_records; delete from usage_rollups_hourly; delete from usage_rollups_daily_sources; delete from usage_rollups_daily_models;',
      );
    }
  };
  const insertLines = (segments: Buffer[]) =>
    handle(json).transaction(() => insertUsageSegmentsSqlite(handle(json), segments))();
  const tables = (database: TestDatabase) => ({
    raw: handle(database).prepare('select * from usage_records order by id').all(),
    hourly: handle(database)
      .prepare(
        'select * from usage_rollups_hourly order by hour, user_id, source, api_key_id, model, user_name',
      )
      .all(),
    sources: handle(database)
      .prepare('select * from usage_rollups_daily_sources order by 1, 2, 3, 4, 5, 6')
      .all(),
    models: handle(database).prepare('select * from usage_rollups_daily_models order by 1, 2, 3, 4').all(),
  });

  it('stores what binding each row stores, for random rows (UTF-8, omitted fields, duplicates)', () => {
    const text = fc.oneof(
      fc.constantFrom('', 'key one', 'Zoë — 東京 🚀', 'a"quote\\back\nslash'),
      fc.string(),
    );
    const row = fc.record(
      {
        id: fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5', 'r6'),
        user_id: fc.constantFrom('u1', 'u2'),
        user_name: text,
        source: fc.constantFrom('apikey', 'web', 'legacy', ''),
        api_key_id: fc.option(fc.constantFrom('k1', 'k2'), { nil: null }),
        api_key_name: text,
        model: text,
        endpoint: fc.constant('/v1/chat/completions'),
        prompt_tokens: fc.nat(100_000),
        completion_tokens: fc.nat(100_000),
        total_tokens: fc.nat(200_000),
        duration_ms: fc.nat(60_000),
        created_at: fc.integer({ min: BASE - 3 * 3_600_000, max: BASE + 3 * 3_600_000 }),
        usage_origin: fc.constantFrom('provider', 'estimated'),
        aborted: fc.constantFrom(0, 1),
        stream: fc.constantFrom(0, 1),
        upstream: fc.constantFrom('default', 'gpu-box'),
      },
      // Optional fields left out, as a row journaled without them.
      { requiredKeys: ['id', 'user_id', 'created_at'] },
    );
    fc.assert(
      fc.property(fc.array(fc.array(row, { maxLength: 8 }), { minLength: 1, maxLength: 4 }), (segments) => {
        clear();
        // Rows stored before: the new ones must reach the rollups, and only them.
        const earlier = [{ id: 'r0', user_id: 'u1', model: 'm', created_at: BASE }];
        insertLines([lines(earlier)]);
        handle(bound).transaction(() => insertUsageRowsSqlite(handle(bound), earlier as UsageRow[]))();
        const all = segments.flat() as UsageRow[];
        const bytes = segments.map((segment) => lines(segment));
        const { inserted, skipped } = insertLines(bytes);
        expect(skipped).toBe(0);
        const expected = handle(bound).transaction(() => insertUsageRowsSqlite(handle(bound), all))();
        expect(inserted).toBe(expected);
        expect(inserted).toBe(new Set(all.map((r) => r.id)).size);
        expect(tables(json)).toEqual(tables(bound));
        // A replay of the same bytes inserts nothing and changes no rollup.
        expect(insertLines(bytes)).toEqual({ inserted: 0, skipped: 0 });
        expect(tables(json)).toEqual(tables(bound));
      }),
      { numRuns: 60 },
    );
  });

  it('skips a line that is not a whole row (short write, torn last line) and keeps the others', () => {
    clear();
    const row = (id: string) => ({ id, user_id: 'u1', created_at: BASE });
    const result = insertLines([
      Buffer.concat([lines([row('w1')]), Buffer.from('{"id":"short-wri\n'), lines([row('w2')])]),
      Buffer.concat([lines([row('w3')]), Buffer.from('{"id":"torn-')]),
    ]);
    expect(result).toEqual({ inserted: 3, skipped: 2 });
    expect(tables(json).raw.map((raw) => (raw as { id: string }).id)).toEqual(['w1', 'w2', 'w3']);
    expect(tables(json).hourly).toMatchObject([{ user_id: 'u1', request_count: 3 }]);
  });
});

describe('segmentsAsJsonArray', () => {
  it('joins whole segments into one JSON array', () => {
    const array = segmentsAsJsonArray([lines([{ a: 1 }, { b: 'x\ny' }]), Buffer.alloc(0), lines([{ c: 3 }])]);
    expect(JSON.parse(String(array))).toEqual([{ a: 1 }, { b: 'x\ny' }, { c: 3 }]);
    expect(String(segmentsAsJsonArray([]))).toBe('[]');
  });

  it('is null when a segment ends in a torn line', () => {
    expect(segmentsAsJsonArray([lines([{ a: 1 }]), Buffer.from('{"id":"torn-')])).toBeNull();
  });
});
