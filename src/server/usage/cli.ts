import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { ZodError } from 'zod';
import { ExportFormat, UsageQuery, UsageTimestamp } from '../../shared/usage.ts';
import type { CatalogProvider } from '../cost/price-book.ts';
import { PriceBook } from '../cost/price-book.ts';
import { configAdminPrices, reloadPrices } from '../cost/prices.service.ts';
import { repriceUsage } from '../cost/reprice.ts';
import { BadRequestError, describeZodError } from '../errors.ts';
import { catalogProviderOf, configPrices, upstreamConfigs } from '../gateway/upstream-config.ts';
import { openRuntime } from '../runtime.ts';
import { createUsageExportStream } from './export.ts';
import { resolveWindow } from './usage-window.ts';

interface ExportOptions {
  format: string;
  period?: string;
  from?: string;
  to?: string;
  user?: string;
  userId?: string;
  output?: string;
  dataDir?: string;
  databaseUrl?: string;
}

export class UsageCliError extends Error {}

interface RepriceCliOptions {
  from: string;
  to: string;
  model?: string;
  dataDir?: string;
  databaseUrl?: string;
}

function parseFlagTime(flag: string, value: string): number {
  const parsed = UsageTimestamp.safeParse(value);
  if (!parsed.success)
    throw new UsageCliError(`--${flag}: must be an RFC3339 timestamp such as 2026-11-28T00:00:00Z`);
  return Date.parse(value.replace(' ', 'T'));
}

async function repriceCommand(options: RepriceCliOptions): Promise<void> {
  const from = parseFlagTime('from', options.from);
  const to = parseFlagTime('to', options.to);
  if (to <= from) throw new UsageCliError('--to: must be after --from');
  const flags: Record<string, string> = {};
  if (options.dataDir) flags.dataDir = options.dataDir;
  if (options.databaseUrl) flags.databaseUrl = options.databaseUrl;
  const runtime = await openRuntime(flags, { logLevel: 'silent' });
  try {
    const book = new PriceBook(configAdminPrices(configPrices(runtime.config)));
    await reloadPrices(runtime.db, book);
    const providers = new Map<string, CatalogProvider>([['demo', null]]);
    for (const upstream of upstreamConfigs(runtime.config))
      providers.set(upstream.name, catalogProviderOf(upstream));
    const interactive = process.stderr.isTTY === true;
    const outcome = await repriceUsage(runtime.db, book, {
      from,
      to,
      model: options.model,
      providers,
      onProgress: (done, total) => {
        const width = 30;
        const filled = total === 0 ? width : Math.round((done / total) * width);
        const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} rows`;
        if (interactive) process.stderr.write(`\r${line}`);
        else if (done === total) process.stderr.write(`${line}\n`);
      },
    });
    if (interactive) process.stderr.write('\n');
    const delta = outcome.costDeltaNanos / 1e9;
    console.log(
      `repriced ${outcome.rows} rows: ${outcome.changedRows} changed, cost ${delta >= 0 ? '+' : '-'}$${Math.abs(delta).toFixed(9).replace(/0+$/, '').replace(/\.$/, '')}`,
    );
  } finally {
    await runtime.db.close();
  }
}

/** `keytally usage export` (the Dashboard issue registers `seed-demo` in demo/cli.ts). */
export function registerUsageCommands(program: Command): void {
  const usage = program
    .command('usage')
    .description('work with recorded usage (export raw rows as CSV or NDJSON, reprice a range)');
  usage
    .command('reprice')
    .description(
      "recompute the cost of the rows recorded in [--from, --to) under today's price list (each row at the version in effect at its time), with their rollups; idempotent",
    )
    .requiredOption('--from <time>', 'start, RFC3339 or YYYY-MM-DD')
    .requiredOption('--to <time>', 'end (exclusive), RFC3339 or YYYY-MM-DD')
    .option('--model <name>', 'only rows of this model')
    .option('--data-dir <dir>', 'data directory [env KEYTALLY_DATA_DIR]')
    .option('--database-url <url>', 'database [env KEYTALLY_DATABASE_URL]')
    .action(async (options: RepriceCliOptions) => {
      try {
        await repriceCommand(options);
      } catch (error) {
        if (error instanceof UsageCliError) {
          console.error(`keytally: ${error.message}`);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
    });
  usage
    .command('export')
    .description(
      'export raw usage rows as CSV or NDJSON (streamed; the same windows as the usage API: whole buckets)',
    )
    .option('--format <format>', 'csv or ndjson', 'csv')
    .option('--period <period>', 'day, week, month (default) or all')
    .option('--from <time>', 'start, RFC3339 (e.g. 2026-11-01T00:00:00Z) or YYYY-MM-DD; overrides --period')
    .option('--to <time>', 'end (exclusive), RFC3339 or YYYY-MM-DD')
    .option('--user <email>', "only this user's rows")
    .option('--user-id <id>', "only this user id's rows (also deleted users and legacy-api-key)")
    .option('--output <file>', 'write to this file instead of stdout')
    .option('--data-dir <dir>', 'data directory [env KEYTALLY_DATA_DIR]')
    .option('--database-url <url>', 'database [env KEYTALLY_DATABASE_URL]')
    .action(async (options: ExportOptions) => {
      try {
        await exportUsage(options);
      } catch (error) {
        if (error instanceof ZodError || error instanceof UsageCliError || error instanceof BadRequestError) {
          console.error(`keytally: ${error instanceof ZodError ? describeZodError(error) : error.message}`);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
    });
}

async function exportUsage(options: ExportOptions): Promise<void> {
  const format = ExportFormat.safeParse(options.format);
  if (!format.success) {
    throw new UsageCliError(`--format: must be csv or ndjson (got ${JSON.stringify(options.format)})`);
  }
  const parsedQuery = UsageQuery.safeParse({ period: options.period, from: options.from, to: options.to });
  if (!parsedQuery.success) {
    // The schema's field names are the flags' names: from → --from, to → --to.
    throw new UsageCliError(`--${describeZodError(parsedQuery.error)}`);
  }
  const query = parsedQuery.data;
  let output: fs.WriteStream | undefined;
  if (options.output) {
    // Open the file before touching the database, so a bad path is one clear line.
    output = await openOutput(options.output);
  }
  const flags: Record<string, string> = {};
  if (options.dataDir) flags.dataDir = options.dataDir;
  if (options.databaseUrl) flags.databaseUrl = options.databaseUrl;
  // Logs are silenced: the export itself may be going to stdout.
  const runtime = await openRuntime(flags, { logLevel: 'silent' });
  try {
    let userId = options.userId;
    if (options.user) {
      const user = await runtime.db.kysely
        .selectFrom('users')
        .select('id')
        .where('email', '=', options.user.trim().toLowerCase())
        .executeTakeFirst();
      if (!user) throw new UsageCliError(`--user: no user with email ${options.user}`);
      userId = user.id;
    }
    const { range } = resolveWindow(query, Date.now());
    const stream = createUsageExportStream(runtime.db, { range, userId }, format.data);
    if (output) {
      await pipeline(stream, output);
      console.error(`keytally: wrote ${options.output}`);
    } else {
      await pipeline(stream, process.stdout, { end: false });
    }
  } finally {
    await runtime.db.close();
  }
}

function openOutput(file: string): Promise<fs.WriteStream> {
  return new Promise((resolve, reject) => {
    const stream = fs.createWriteStream(file);
    stream.once('open', () => resolve(stream));
    stream.once('error', (error: NodeJS.ErrnoException) =>
      reject(new UsageCliError(`--output: cannot write ${file}: ${error.code ?? error.message}`)),
    );
  });
}
