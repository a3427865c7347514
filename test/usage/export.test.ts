import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertUsageBatch } from '../../src/server/usage/ingest.repository.ts';
import { USAGE_EXPORT_COLUMNS, UsageExportRow } from '../../src/shared/usage.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, DIALECTS, makeTempDir } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { runKeytally } from '../helpers/process.ts';
import { DAY, HOUR, NOW, usageRow } from './helpers.ts';

/** A small RFC 4180 parser, to read back what the export wrote. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

describe.each(DIALECTS)('usage export on %s', (dialect) => {
  let t: TestApp;
  let aliceKey: string;
  let bobKey: string;
  let adminKey: string;
  let aliceId: string;
  let bobKeyId: string;

  beforeAll(async () => {
    t = await startTestApp({ dialect, now: () => NOW });
    const db = t.database.db;
    const alice = await createUser(db, { name: 'Alice' });
    const bob = await createUser(db, { name: 'Bob' });
    const root = await createUser(db, { name: 'Root', role: 'admin' });
    aliceId = alice.id;
    aliceKey = (await createApiKey(db, { userId: alice.id })).key;
    const bobApiKey = await createApiKey(db, { userId: bob.id, name: 'bob, "the" key' });
    bobKey = bobApiKey.key;
    bobKeyId = bobApiKey.id;
    adminKey = (await createApiKey(db, { userId: root.id })).key;
    // 2,500 rows for Alice: more than two pages of the keyset cursor.
    const rows = Array.from({ length: 2500 }, (_, i) =>
      usageRow({
        user_id: alice.id,
        user_name: 'Alice',
        created_at: NOW - 2 * DAY + (i % 40) * HOUR,
        total_tokens: i,
      }),
    );
    rows.push(
      usageRow({
        user_id: bob.id,
        user_name: '=HYPERLINK("x")',
        source: 'apikey',
        api_key_id: bobApiKey.id,
        api_key_name: 'bob, "the" key\nline two',
        created_at: NOW - HOUR,
        stream: 1,
        usage_origin: 'estimated',
      }),
      usageRow({ user_id: bob.id, user_name: 'Bob', created_at: NOW - 40 * DAY }),
    );
    await insertUsageBatch(t.database.db, rows);
  });
  afterAll(async () => t?.close());

  it('streams CSV with a header, quoting and formula neutralising, as an attachment', async () => {
    const response = await t.app.inject({
      method: 'GET',
      url: '/api/auth/usage/export?format=csv&period=week',
      headers: { authorization: `Bearer ${bobKey}` },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toBe(
      'attachment; filename="keytally-usage-2026-11-28.csv"',
    );
    const [header, ...rows] = parseCsv(response.body);
    expect(header).toEqual([...USAGE_EXPORT_COLUMNS]);
    // Bob's row 40 days old is outside the week.
    expect(rows).toHaveLength(1);
    const record = Object.fromEntries(USAGE_EXPORT_COLUMNS.map((column, i) => [column, rows[0]?.[i]]));
    expect(record).toMatchObject({
      user_name: `'=HYPERLINK("x")`,
      source: 'apikey',
      api_key_id: bobKeyId,
      api_key_name: 'bob, "the" key\nline two',
      created_at: new Date(NOW - HOUR).toISOString(),
      total_tokens: '15',
      stream: 'true',
      usage_origin: 'estimated',
    });
  });

  it("exports only the caller's rows, every page, in time order (NDJSON)", async () => {
    const response = await t.app.inject({
      method: 'GET',
      url: '/api/auth/usage/export?format=ndjson&period=all',
      headers: { authorization: `Bearer ${aliceKey}` },
    });
    expect(response.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    expect(response.headers['content-disposition']).toContain('.ndjson"');
    const rows = response.body
      .split('\n')
      .filter(Boolean)
      .map((line) => UsageExportRow.parse(JSON.parse(line)));
    expect(rows).toHaveLength(2500);
    expect(new Set(rows.map((row) => row.user_id))).toEqual(new Set([aliceId]));
    expect(rows.reduce((sum, row) => sum + row.total_tokens, 0)).toBe((2499 * 2500) / 2);
    const times = rows.map((row) => Date.parse(row.created_at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(rows.map((row) => row.id)).size).toBe(2500);
  });

  it('admin export sees everyone and filters by user_id and api_key_id; guards answer 401/403', async () => {
    const all = await t.app.inject({
      method: 'GET',
      url: '/api/auth/admin/usage/export?format=ndjson&period=all',
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect(all.body.trim().split('\n')).toHaveLength(2502);
    const byKey = await t.app.inject({
      method: 'GET',
      url: `/api/auth/admin/usage/export?format=ndjson&period=all&api_key_id=${bobKeyId}`,
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect(
      byKey.body
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).api_key_id),
    ).toEqual([bobKeyId]);
    const forbidden = await t.app.inject({
      method: 'GET',
      url: '/api/auth/admin/usage/export',
      headers: { authorization: `Bearer ${aliceKey}` },
    });
    expect(forbidden.statusCode).toBe(403);
    const anonymous = await t.app.inject({ method: 'GET', url: '/api/auth/usage/export' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toEqual({ error: 'not authenticated' });
    const badFormat = await t.app.inject({
      method: 'GET',
      url: '/api/auth/usage/export?format=xml',
      headers: { authorization: `Bearer ${aliceKey}` },
    });
    expect(badFormat.statusCode).toBe(400);
    expect(badFormat.json().error).toMatch(/^format: /);
  });
});

describe('keytally usage export (CLI)', () => {
  it('writes the NDJSON export of one user to a file', async () => {
    const database = await createTestDatabase('sqlite');
    try {
      const alice = await createUser(database.db, { email: 'alice@example.test', name: 'Alice' });
      const bob = await createUser(database.db, { name: 'Bob' });
      const now = Date.now();
      await insertUsageBatch(database.db, [
        usageRow({ user_id: alice.id, created_at: now - HOUR, total_tokens: 7 }),
        usageRow({ user_id: alice.id, created_at: now - 40 * DAY, total_tokens: 9 }),
        usageRow({ user_id: bob.id, created_at: now - HOUR }),
      ]);
      const output = path.join(makeTempDir(), 'out.ndjson');
      const env = { KEYTALLY_DATA_DIR: database.dataDir, KEYTALLY_DATABASE_URL: database.url };
      const run = runKeytally(
        ['usage', 'export', '--format', 'ndjson', '--user', 'alice@example.test', '--output', output],
        env,
      );
      expect(await run.exited, run.output()).toBe(0);
      const rows = fs
        .readFileSync(output, 'utf8')
        .trim()
        .split('\n')
        .map((line) => UsageExportRow.parse(JSON.parse(line)));
      // Default period month: the 40-day-old row is out.
      expect(rows.map((row) => [row.user_id, row.total_tokens])).toEqual([[alice.id, 7]]);

      const bad = runKeytally(['usage', 'export', '--from', 'yesterday'], env);
      expect(await bad.exited).toBe(2);
      expect(bad.output()).toContain('--from: must be an RFC3339 timestamp');

      const badFormat = runKeytally(['usage', 'export', '--format', 'xml'], env);
      expect(await badFormat.exited).toBe(2);
      expect(badFormat.output().trim()).toBe('keytally: --format: must be csv or ndjson (got "xml")');

      const badOutput = runKeytally(['usage', 'export', '--output', '/nonexistent-dir/x.csv'], env);
      expect(await badOutput.exited).toBe(2);
      expect(badOutput.output().trim().split('\n')).toEqual([
        'keytally: --output: cannot write /nonexistent-dir/x.csv: ENOENT',
      ]);
    } finally {
      await database.close();
    }
  }, 30_000);
});
