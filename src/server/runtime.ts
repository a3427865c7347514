import type { Logger } from 'pino';
import { loadOrCreateHmacSecret } from './auth/hash.ts';
import { type Config, type ConfigFlags, loadConfig } from './config.ts';
import { secureDataDir } from './data-dir.ts';
import { type Db, openDatabase } from './db/connection.ts';
import { migrateToLatest } from './db/migrate.ts';
import { createLogger, selectLogFormat } from './logger.ts';
import { backfillUsageSource } from './usage/backfill.ts';

export interface Runtime {
  config: Config;
  db: Db;
  logger: Logger;
  hmacSecret: string;
}

/** config → logger → HMAC secret → database (migrated). Shared by `serve` and the CLI commands. */
export async function openRuntime(
  flags: ConfigFlags = {},
  options: { logLevel?: string } = {},
): Promise<Runtime> {
  const config = loadConfig(flags);
  const logger = createLogger(
    options.logLevel ?? config.logLevel,
    undefined,
    selectLogFormat(config.logFormat, process.stdout.isTTY === true),
  );
  const tightened = secureDataDir(config.dataDir, config.databaseUrl);
  if (tightened.length > 0) {
    logger.warn(
      { tightened: tightened.map((entry) => `${entry.path} (was ${entry.from})`) },
      'tightened file permissions: the data directory is now 0700 and its files 0600, readable by no other local user',
    );
  }
  const db = await openDatabase(config.databaseUrl);
  let secret: ReturnType<typeof loadOrCreateHmacSecret>;
  try {
    const { applied } = await migrateToLatest(db);
    if (applied.length > 0) logger.info({ applied }, 'applied migrations');
    // Reference 8.6: rows imported without a source get one, and their rollups are rebuilt.
    const backfill = await backfillUsageSource(db);
    if (backfill.rows > 0) logger.info(backfill, 'backfilled the source of usage rows');
    secret = loadOrCreateHmacSecret(config.hmacSecret, config.dataDir);
  } catch (error) {
    await db.close();
    throw error;
  }
  if (secret.origin === 'generated') logger.info({ file: secret.file }, 'generated a new HMAC secret');
  return { config, db, logger, hmacSecret: secret.secret };
}
