import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';

export interface TestPostgres {
  /** A postgres:// URL whose connections see a fresh, empty schema. */
  url: string;
  /** 'server' (KEYTALLY_TEST_DATABASE_URL) or 'pglite' (embedded, served over the wire protocol). */
  kind: 'server' | 'pglite';
  cleanup(): Promise<void>;
}

function withSearchPath(base: string, schema: string): string {
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/**
 * A fresh PostgreSQL database for one test: a new schema on KEYTALLY_TEST_DATABASE_URL when set
 * (CI: this machine's server), otherwise an embedded PGlite served by pglite-socket, so the real
 * `pg` driver runs either way.
 */
export async function createTestPostgres(): Promise<TestPostgres> {
  const base = process.env.KEYTALLY_TEST_DATABASE_URL;
  if (base) {
    const schema = `kt_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    return {
      url: withSearchPath(base, schema),
      kind: 'server',
      async cleanup() {
        const client = new pg.Client({ connectionString: base });
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      },
    };
  }
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 64 });
  await server.start();
  const address = (server as unknown as { server: { address(): { port: number } } }).server.address();
  return {
    url: `postgres://postgres@127.0.0.1:${address.port}/postgres`,
    kind: 'pglite',
    async cleanup() {
      await server.stop();
      await db.close();
    },
  };
}

/**
 * Whether tests run against a PostgreSQL server (KEYTALLY_TEST_DATABASE_URL; .ci/run always sets
 * one, so CI never skips what needs it). The embedded PGlite multiplexes every connection onto one
 * backend: statements never run at once, and NOTIFY is not delivered between connections.
 */
export const HAS_POSTGRES_SERVER = Boolean(process.env.KEYTALLY_TEST_DATABASE_URL);
