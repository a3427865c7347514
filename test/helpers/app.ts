import type { FastifyInstance } from 'fastify';
import { type AppOptions, buildApp } from '../../src/server/app.ts';
import { type Config, type ConfigFlags, loadConfig } from '../../src/server/config.ts';
import type { DialectName } from '../../src/server/db/dialect.ts';
import type { AppDeps } from '../../src/server/deps.ts';
import { createLogger } from '../../src/server/logger.ts';
import type { JournalFiles } from '../../src/server/usage/journal.ts';
import { createUsageRecorder, type UsageRecorder } from '../../src/server/usage/recorder.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export const TEST_HMAC_SECRET = 'test-hmac-secret-0123456789abcdef0123456789';

export interface TestApp {
  app: FastifyInstance;
  deps: AppDeps;
  database: TestDatabase;
  config: Config;
  recorder: UsageRecorder;
  /** Base URL once `listen()` was called. */
  baseUrl: string;
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  dialect: DialectName;
  /** Settings by name, as `keytally serve` flags would give them. */
  settings?: ConfigFlags;
  /** Reuse an existing database instead of creating one. */
  database?: TestDatabase;
  now?: () => number;
  /** Where log lines go (with `settings.logLevel`); default: nowhere. */
  logDestination?: { write(line: string): void };
  /** HTTP server options (shorter timeouts). */
  appOptions?: AppOptions;
  /** The usage journal's file boundary (a full disk injected). */
  journalFiles?: JournalFiles;
}

/** The real app on a real, fresh database; logs silenced; nothing listens until `listen()`. */
export async function startTestApp(options: TestAppOptions): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase(options.dialect));
  const config = loadConfig(
    {
      dataDir: database.dataDir,
      databaseUrl: database.url,
      hmacSecret: TEST_HMAC_SECRET,
      port: '0',
      logLevel: 'silent',
      registrationMode: 'open',
      ...options.settings,
    },
    {},
  );
  const logger = createLogger(config.logLevel, options.logDestination);
  const recorder = await createUsageRecorder({
    db: database.db,
    logger,
    flushMs: config.usageFlushMs,
    dataDir: config.dataDir,
    journalFiles: options.journalFiles,
  });
  const deps: AppDeps = {
    config,
    db: database.db,
    logger,
    hmacSecret: TEST_HMAC_SECRET,
    recorder,
    now: options.now,
  };
  const app = await buildApp(deps, options.appOptions);
  const testApp: TestApp = {
    app,
    deps,
    database,
    config,
    recorder,
    baseUrl: '',
    async listen() {
      testApp.baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
      return testApp.baseUrl;
    },
    async close() {
      await app.close();
      await recorder.close();
      if (!options.database) await database.close();
    },
  };
  return testApp;
}
