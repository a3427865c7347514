import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { encode } from 'gpt-tokenizer';
import { afterAll } from 'vitest';
import type { DialectName } from '../../src/server/db/dialect.ts';
import type { UsageRecordRow } from '../../src/server/db/schema.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { makeTempDir } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';

/** Tokens of `text` as keytally's estimator counts them. */
export const countTokens = (text: string) => encode(text, { disallowedSpecial: new Set() }).length;

/** The usage rows written since the last call, after an explicit flush. */
export function rowReader(t: () => TestApp): () => Promise<UsageRecordRow[]> {
  const seen = new Set<string>();
  return async () => {
    await t().recorder.flushNow();
    const rows = await t().database.db.kysely.selectFrom('usage_records').selectAll().execute();
    const fresh = rows.filter((row) => !seen.has(row.id));
    for (const row of fresh) seen.add(row.id);
    return fresh;
  };
}

/**
 * The rows of a request whose recording happens after its response (a stream cut by the client):
 * flushes until one appears (bounded: each turn is a flush, not a sleep).
 */
export async function waitForRows(read: () => Promise<UsageRecordRow[]>): Promise<UsageRecordRow[]> {
  let rows: UsageRecordRow[] = [];
  for (let attempt = 0; attempt < 200 && rows.length === 0; attempt += 1) {
    rows = await read();
    if (rows.length === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return rows;
}

/**
 * POSTs `body` with node:http and destroys the request once `pieces` complete pieces (separated by
 * `separator`) arrived, so exactly this socket closes mid-stream.
 */
export function postAndCut(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  separator: string,
  pieces: number,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const request = http.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
    });
    let text = '';
    request.on('error', () => resolve(text));
    request.on('response', (response) => {
      response.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.split(separator).length - 1 >= pieces) {
          request.destroy();
          resolve(text);
        }
      });
      response.on('error', () => resolve(text));
      response.on('end', () => reject(new Error(`the stream ended before the client disconnected: ${text}`)));
    });
    request.end(JSON.stringify(body));
  });
}

/**
 * For a describe block: a temp folder removed after its tests, and `write(text)`, which puts `text`
 * in a new YAML file there and returns its path.
 */
export function yamlFiles(): { dir: string; write: (text: string) => string } {
  const dir = makeTempDir();
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (text: string) => {
    const file = path.join(dir, `c${Math.random().toString(16).slice(2)}.yaml`);
    fs.writeFileSync(file, text);
    return file;
  };
  return { dir, write };
}

/** A KEYTALLY_CONFIG file with these upstreams (YAML written from plain objects). */
export function writeUpstreamsConfig(upstreams: Record<string, unknown>[]): string {
  const file = path.join(makeTempDir(), 'keytally.yaml');
  fs.writeFileSync(file, JSON.stringify({ upstreams }));
  return file;
}

/**
 * A listening keytally on `configFile` with the client's user: `key` (named `keyName`) to sign in
 * with, and a revoked key of the same user the 401 cases use. Closes the app if seeding fails.
 */
export async function startClientApp(
  dialect: DialectName,
  configFile: string,
  names: { user: string; key: string },
): Promise<{ t: TestApp; userId: string; key: { id: string; key: string }; revokedKey: string }> {
  const t = await startTestApp({ dialect, settings: { configFile } });
  try {
    await t.listen();
    const user = await createUser(t.database.db, { name: names.user });
    const key = await createApiKey(t.database.db, { userId: user.id, name: names.key });
    const revoked = await createApiKey(t.database.db, { userId: user.id, revokedAt: Date.now() - 1000 });
    return { t, userId: user.id, key, revokedKey: revoked.key };
  } catch (error) {
    await t.close();
    throw error;
  }
}
