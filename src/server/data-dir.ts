import fs from 'node:fs';
import path from 'node:path';
import { isPostgresUrl } from './config.ts';

/**
 * The data directory holds emails, password hashes, the HMAC secret and usage: nothing in it is for
 * other local users (decisions.md section 11). New directories are created 0700 and files 0600;
 * SQLite gives its -wal, -shm and -journal files the mode of the database file, so creating that
 * file 0600 before SQLite opens it covers them too.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

export interface TightenedPath {
  path: string;
  /** The mode it had, e.g. `0755`. */
  from: string;
}

/** The SQLite database file and the files SQLite keeps beside it. */
export function sqliteFiles(file: string): string[] {
  return [file, `${file}-wal`, `${file}-shm`, `${file}-journal`];
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

/** chmod to `mode` when group or others have any access; returns what it changed. */
function tighten(file: string, mode: number): TightenedPath | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if ((stat.mode & 0o077) === 0) return undefined;
  // A shared directory (sticky bit, like /tmp) given as the data dir is left as it is.
  if (stat.isDirectory() && (stat.mode & 0o1000) !== 0) return undefined;
  try {
    fs.chmodSync(file, mode);
  } catch (error) {
    // Someone else's file (EPERM): nothing this process may change; SQLite will say if it cannot use it.
    if ((error as NodeJS.ErrnoException).code === 'EPERM') return undefined;
    throw error;
  }
  return { path: file, from: octal(stat.mode) };
}

/** Creates a directory (and missing parents) 0700. */
export function makePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/** Creates an empty file 0600 unless it exists (SQLite takes an empty file as a new database). */
export function createPrivateFile(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', PRIVATE_FILE_MODE));
}

/**
 * At start-up: creates the data dir 0700, and tightens a data dir, HMAC secret or SQLite files that
 * an earlier version (or a copy) left readable by others. Returns what it tightened so that the
 * caller logs it once.
 */
export function secureDataDir(dataDir: string, databaseUrl: string): TightenedPath[] {
  try {
    makePrivateDir(dataDir);
  } catch {
    // Not creatable (a path through a file, no permission): opening the database next fails with
    // the one-line message that names the file.
    return [];
  }
  const tightened: (TightenedPath | undefined)[] = [
    tighten(dataDir, PRIVATE_DIR_MODE),
    tighten(path.join(dataDir, '.hmac_secret'), PRIVATE_FILE_MODE),
    tighten(path.join(dataDir, 'usage-journal'), PRIVATE_DIR_MODE),
  ];
  if (!isPostgresUrl(databaseUrl) && databaseUrl !== ':memory:') {
    for (const file of sqliteFiles(databaseUrl)) tightened.push(tighten(file, PRIVATE_FILE_MODE));
  }
  return tightened.filter((entry): entry is TightenedPath => entry !== undefined);
}
