import type SqliteDatabase from 'better-sqlite3';

/**
 * Every keytally SQLite connection's settings. Kept apart from connection.ts (Kysely, pg, zod) so
 * the usage writer thread can open its connection without loading them.
 */
export function applySqlitePragmas(database: SqliteDatabase.Database): void {
  database.pragma('journal_mode = WAL');
  // Writers wait up to 5 s for each other (the CLI and a running server may share the file).
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  // WAL + NORMAL is durable against process crashes; the usage journal covers the rest.
  database.pragma('synchronous = NORMAL');
  // Each insert inside the usage writer's transaction keeps a statement journal (to undo just that
  // statement); on disk it cost one pwrite(2) per page touched, ~7 per row and ~40% of the writer
  // thread's CPU (bench/README.md, session 10). In memory it is a few pages per statement.
  database.pragma('temp_store = MEMORY');
}
