import type { Command } from 'commander';
import { openRuntime } from '../runtime.ts';
import { DEMO_DAYS, DemoSeedRefused, seedDemo } from './seed.ts';

interface SeedDemoFlags {
  adminEmail?: string;
  adminPassword?: string;
  dataDir?: string;
  databaseUrl?: string;
}

/** `keytally seed-demo`: fills an empty database with labelled sample usage. */
export function registerDemoCommands(program: Command): void {
  program
    .command('seed-demo')
    .description(
      `fill an EMPTY database with ${DEMO_DAYS} days of clearly labelled sample usage (demo users, a dozen keys, web and legacy traffic) to explore the dashboard; refuses if users or usage exist`,
    )
    .option(
      '--admin-email <email>',
      'email of the demo admin account you sign in with',
      'admin@demo.keytally',
    )
    .option('--admin-password <password>', 'its password (default: generated and printed once)')
    .option('--data-dir <dir>', 'data directory [env KEYTALLY_DATA_DIR]')
    .option('--database-url <url>', 'database [env KEYTALLY_DATABASE_URL]')
    .action(async (options: SeedDemoFlags) => {
      const flags: Record<string, string> = {};
      if (options.dataDir) flags.dataDir = options.dataDir;
      if (options.databaseUrl) flags.databaseUrl = options.databaseUrl;
      const runtime = await openRuntime(flags, { logLevel: 'warn' });
      try {
        const result = await seedDemo(runtime.db, runtime.hmacSecret, {
          ...(options.adminEmail ? { adminEmail: options.adminEmail } : {}),
          ...(options.adminPassword ? { adminPassword: options.adminPassword } : {}),
        });
        console.log(
          `keytally: seeded ${result.usageRows} demo requests (${result.totalTokens} tokens) over ${DEMO_DAYS} days for ${result.users} demo users and ${result.keys} demo keys into ${runtime.db.describe}`,
        );
        console.log(`keytally: sign in as ${result.adminEmail}`);
        if (result.generatedPassword)
          console.log(`keytally: password (shown once): ${result.generatedPassword}`);
      } catch (error) {
        if (error instanceof DemoSeedRefused) {
          console.error(`keytally: ${error.message}`);
          process.exitCode = 2;
          return;
        }
        throw error;
      } finally {
        await runtime.db.close();
      }
    });
}
