import type { Command } from 'commander';
import { KeyScope } from '../../shared/access.ts';
import { MAX_KEY_EXPIRY_MS, parseDurationMs } from '../config.ts';
import { AppError } from '../errors.ts';
import { openRuntime, type Runtime } from '../runtime.ts';
import { createUserDirect } from './accounts.service.ts';
import { listApiKeys } from './api-keys.repository.ts';
import { createApiKeyFor, revokeApiKeyById } from './api-keys.service.ts';
import { type AuthRuntime, createCliAuthRuntime } from './auth-runtime.ts';
import type { Role } from './context.ts';
import { CACHE_TTL_MS } from './credential-cache.ts';
import { iso } from './dto.ts';
import { MIN_PASSWORD_CHARS } from './password-policy.ts';
import { findLocalUserByEmail, listUsers } from './users.repository.ts';
import { normaliseEmail } from './users.service.ts';

/** A failure the user can fix: one line on stderr, exit 1. */
class CliError extends Error {}

async function withAuthRuntime(fn: (rt: AuthRuntime, runtime: Runtime) => Promise<void>): Promise<void> {
  // Logs go to stderr at warn: stdout carries only the command's output (a key, a table).
  const runtime = await openRuntime({}, { logLevel: 'warn' });
  try {
    await fn(createCliAuthRuntime(runtime), runtime);
  } catch (error) {
    if (error instanceof AppError || error instanceof CliError) {
      console.error(`keytally: ${error.message}`);
      process.exitCode = 1;
      return;
    }
    throw error;
  } finally {
    await runtime.db.close();
  }
}

async function userIdByEmail(rt: AuthRuntime, email: string): Promise<{ id: string; role: Role }> {
  const user = await findLocalUserByEmail(rt.db, normaliseEmail(email));
  if (!user) throw new CliError(`no user with email ${email}`);
  return user;
}

/** `keytally user …` and `keytally key …`. Configuration comes from the KEYTALLY_* environment. */
export function registerAuthCommands(program: Command): void {
  const user = program.command('user').description('manage user accounts (uses the KEYTALLY_* environment)');
  user
    .command('create')
    .description('create an active local user (the first user, or --admin, is an admin)')
    .requiredOption('--email <email>', 'login email')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--password <password>', 'password (at least 12 characters)')
    .option('--admin', 'make the user an admin', false)
    .option('--weak-password', 'accept a password shorter than 12 characters', false)
    .action(
      async (options: {
        email: string;
        name: string;
        password: string;
        admin: boolean;
        weakPassword: boolean;
      }) =>
        withAuthRuntime(async (rt) => {
          // Checked here so the hint names the CLI flag, not the API's acknowledge_weak_password.
          if ([...options.password].length < MIN_PASSWORD_CHARS && !options.weakPassword) {
            throw new CliError(
              `--password must be at least ${MIN_PASSWORD_CHARS} characters (add --weak-password to accept a shorter one)`,
            );
          }
          const created = await createUserDirect(rt, {
            email: options.email,
            name: options.name,
            password: options.password,
            admin: options.admin,
            acknowledgeWeak: options.weakPassword,
          });
          console.log(`created user ${created.email} (id ${created.id}, role ${created.role})`);
        }),
    );

  const key = program.command('key').description('manage API keys (uses the KEYTALLY_* environment)');
  key
    .command('create')
    .description('create an API key for a user and print it once (it cannot be shown again)')
    .requiredOption('--user <email>', "the owner's email")
    .requiredOption('--name <name>', 'a label for the key, e.g. ci-runner')
    .option(
      '--expires <duration>',
      'expire after e.g. 90d, 12h, 1y (default KEYTALLY_DEFAULT_KEY_EXPIRY or never)',
    )
    .option('--scopes <list>', 'comma-separated: inference, usage, keys, admin (default inference,usage)')
    .action(async (options: { user: string; name: string; expires?: string; scopes?: string }) =>
      withAuthRuntime(async (rt) => {
        if (options.name.trim() === '') throw new CliError('--name must not be empty');
        // Checked here so the message names the flag, not the API's `expiresIn` field.
        if (options.expires !== undefined && parseDurationMs(options.expires) === null) {
          throw new CliError(`--expires: "${options.expires}" is not a duration; use e.g. 90d, 12h or 1y`);
        }
        if (options.expires !== undefined && (parseDurationMs(options.expires) ?? 0) > MAX_KEY_EXPIRY_MS) {
          throw new CliError(`--expires: "${options.expires}" is more than 10y`);
        }
        const owner = await userIdByEmail(rt, options.user);
        const scopes = options.scopes?.split(',').map((scope) => scope.trim());
        const parsed = scopes === undefined ? undefined : KeyScope.array().safeParse(scopes);
        if (parsed && !parsed.success) {
          throw new CliError(`--scopes: "${options.scopes}" must list inference, usage, keys or admin`);
        }
        const created = await createApiKeyFor(rt, owner, {
          name: options.name,
          expiresIn: options.expires,
          scopes: parsed?.data,
        });
        console.log(created.key);
        console.error(
          `created key ${created.id} "${created.name}" (${created.keyPrefix}…)${created.expiresAt ? `, expires ${created.expiresAt}` : ''}; store it now, it is not shown again`,
        );
      }),
    );

  key
    .command('list')
    .description('list API keys (all users, or one with --user); never shows the keys themselves')
    .option('--user <email>', "only this user's keys")
    .action(async (options: { user?: string }) =>
      withAuthRuntime(async (rt) => {
        const owner = options.user ? await userIdByEmail(rt, options.user) : undefined;
        const [rows, users] = await Promise.all([
          listApiKeys(rt.db, { userId: owner?.id }),
          listUsers(rt.db),
        ]);
        const emails = new Map(users.map((u) => [u.id, u.email]));
        const now = Date.now();
        console.log(['ID', 'PREFIX', 'NAME', 'USER', 'CREATED', 'LAST USED', 'STATE'].join('\t'));
        for (const row of rows) {
          const state =
            row.revoked_at !== null
              ? `revoked ${iso(row.revoked_at)}`
              : row.disabled_at !== null
                ? 'disabled'
                : row.expires_at !== null && row.expires_at <= now
                  ? 'expired'
                  : row.expires_at !== null
                    ? `active until ${iso(row.expires_at)}`
                    : 'active';
          console.log(
            [
              row.id,
              row.key_prefix,
              row.name,
              emails.get(row.user_id) ?? row.user_id,
              iso(row.created_at),
              row.last_used === null ? '-' : iso(row.last_used),
              state,
            ].join('\t'),
          );
        }
      }),
    );

  key
    .command('revoke')
    .description(
      'revoke an API key by id (on PostgreSQL every instance refuses it at once; on SQLite a running server does within 10 s)',
    )
    .argument('<id>', 'the key id, as shown by `keytally key list`')
    .action(async (id: string) =>
      withAuthRuntime(async (rt) => {
        await revokeApiKeyById(rt, id);
        // A running server on SQLite has no channel from this process: its credential cache
        // (CACHE_TTL_MS) is what bounds how long the key keeps working there.
        console.log(
          rt.db.dialect === 'sqlite'
            ? `revoked key ${id}; a running keytally server refuses it within ${CACHE_TTL_MS / 1000} s`
            : `revoked key ${id}`,
        );
      }),
    );
}
