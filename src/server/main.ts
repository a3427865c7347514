import fs from 'node:fs';
import { Command, Option } from 'commander';
import { buildApp } from './app.ts';
import { registerAuthCommands } from './auth/cli.ts';
import { ConfigError, type ConfigFlags, loadConfig, SETTINGS, type SettingName } from './config.ts';
import { DatabaseUnavailableError, openDatabase } from './db/connection.ts';
import { MigrationError, migrateToLatest } from './db/migrate.ts';
import { registerDemoCommands } from './demo/cli.ts';
import { servesDemoModel } from './gateway/routes.ts';
import { installGracefulClose } from './graceful-close.ts';
import { openRuntime } from './runtime.ts';
import { registerUsageCommands } from './usage/cli.ts';
import { createUsageRecorder } from './usage/recorder.ts';

// SIGTERM must end the process with exit 0 within 10 s; past 9 s whatever is left is in the journal.
const SHUTDOWN_DEADLINE_MS = 9000;

/** `--data-dir` → `dataDir`: the attribute commander stores a flag under. */
function flagAttribute(flag: string): string {
  const long = flag.split(' ')[0]?.replace(/^--/, '') ?? '';
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Adds every setting of config.ts as a flag; returns a reader of the given flags. */
export function addSettingFlags(command: Command): (options: Record<string, unknown>) => ConfigFlags {
  for (const [, setting] of Object.entries(SETTINGS)) {
    command.addOption(
      new Option(setting.flag, `${setting.help} [env ${setting.env}; default ${setting.default}]`),
    );
  }
  return (options) => {
    const flags: ConfigFlags = {};
    for (const [name, setting] of Object.entries(SETTINGS) as [
      SettingName,
      (typeof SETTINGS)[SettingName],
    ][]) {
      const value = options[flagAttribute(setting.flag)];
      if (typeof value === 'string') flags[name] = value;
    }
    return flags;
  };
}

async function serve(flags: ConfigFlags): Promise<void> {
  const runtime = await openRuntime(flags);
  const { config, db, logger } = runtime;
  const recorder = await createUsageRecorder({
    db,
    logger,
    flushMs: config.usageFlushMs,
    batchRows: config.usageBatchRows,
    dataDir: config.dataDir,
    // SQLite commits on a worker thread: better-sqlite3 would block every request while they run.
    sqliteWorker: true,
  });
  const app = await buildApp({ ...runtime, recorder });
  installGracefulClose(app.server);
  await app.listen({ host: config.host, port: config.port });
  logger.info({ database: db.describe, dataDir: config.dataDir }, 'keytally is ready');
  if (servesDemoModel(runtime)) {
    logger.info(
      'no upstream is configured: serving the built-in demo model "demo"; set KEYTALLY_UPSTREAM_URL or KEYTALLY_CONFIG to reach real models',
    );
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const deadline = setTimeout(() => {
      logger.warn('shutdown deadline reached; unwritten usage stays in the journal');
      process.exit(0);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    try {
      await app.close();
      await recorder.close();
      await db.close();
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** package.json's version: this file and its bundle (dist/server/main.js) are both two levels down. */
function packageVersion(): string {
  try {
    const text = fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function createProgram(): Command {
  const program = new Command('keytally')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .description(
      'OpenAI-compatible gateway that gives every user named API keys and records the token usage of every request.',
    )
    .showHelpAfterError()
    .addHelpText(
      'after',
      '\nEvery serve flag is also an environment variable (see `keytally serve --help`).\nWith no configuration keytally runs on SQLite in ./data and serves the demo model.',
    );

  const serveCommand = program
    .command('serve', { isDefault: true })
    .description('start the gateway, the usage API and the dashboard');
  const readServeFlags = addSettingFlags(serveCommand);
  // serve is the default command, so a mistyped command (`keytally sever`) lands here as an
  // argument: say that it is an unknown command rather than "too many arguments for 'serve'".
  serveCommand.allowExcessArguments(true);
  serveCommand.action(async (options: Record<string, unknown>, command: Command) => {
    const [unknown] = command.args;
    if (unknown !== undefined) {
      program.error(`error: unknown command '${unknown}' (see \`keytally --help\`)`);
    }
    await serve(readServeFlags(options));
  });

  const migrateCommand = program.command('migrate').description('apply pending database migrations and exit');
  const readMigrateFlags = addSettingFlags(migrateCommand);
  migrateCommand.action(async (options: Record<string, unknown>) => {
    const config = loadConfig(readMigrateFlags(options));
    const db = await openDatabase(config.databaseUrl);
    try {
      const { applied } = await migrateToLatest(db);
      console.log(applied.length === 0 ? 'database is up to date' : `applied: ${applied.join(', ')}`);
    } finally {
      await db.close();
    }
  });

  registerAuthCommands(program);
  registerUsageCommands(program);
  registerDemoCommands(program);
  return program;
}

/** One line, a meaningful exit code, no stack trace for the failures a user can fix. */
export function reportFatal(error: unknown): number {
  if (error instanceof ConfigError) {
    console.error(`keytally: invalid configuration: ${error.message}`);
    return 2;
  }
  if (error instanceof DatabaseUnavailableError || error instanceof MigrationError) {
    console.error(`keytally: ${error.message}`);
    return 1;
  }
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    console.error(`keytally: cannot listen: ${(error as Error).message}`);
    return 1;
  }
  console.error('keytally: unexpected error:', error);
  return 1;
}

const isEntryPoint = process.argv[1] !== undefined && /(main\.ts|keytally(\.js)?)$/.test(process.argv[1]);
if (isEntryPoint) {
  createProgram()
    .parseAsync(process.argv)
    .catch((error: unknown) => {
      process.exit(reportFatal(error));
    });
}
