import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { SETTINGS, type SettingName } from './config-settings.ts';

/**
 * The configuration contract of decisions.md section 2. This module is the only reader of
 * process.env: every setting is an environment variable and a `keytally serve` flag of the same
 * meaning (flags win), parsed once with zod.
 */

// The table sits in its own module for length only; importers keep one entry point, config.ts.
export { SETTINGS, type SettingName } from './config-settings.ts';

export const REGISTRATION_MODES = ['open', 'approval', 'invite'] as const;
export type RegistrationMode = (typeof REGISTRATION_MODES)[number];

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** `90d`, `12h`, `30m`, `1y`, `2w` → milliseconds; null when the text is not a duration. */
export function parseDurationMs(text: string): number | null {
  const match = /^(\d+)(ms|s|m|h|d|w|y)$/.exec(text.trim());
  if (!match) return null;
  const amount = Number(match[1]);
  const unitMs: Record<string, number> = {
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
    w: 7 * 86_400_000,
    y: 365 * 86_400_000,
  };
  const ms = amount * (unitMs[match[2] ?? ''] ?? Number.NaN);
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}

/**
 * The longest API key expiry: 10 years. A duration without a bound (`300000y`) overflowed what a
 * Date can hold, so the key was stored and every key list failed on it afterwards.
 */
export const MAX_KEY_EXPIRY_MS = 10 * 365 * 86_400_000;

const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

const httpUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'must be an http:// or https:// URL');

/** An http(s) base URL without query, fragment or trailing slash (a trailing slash is dropped). */
const baseUrl = httpUrl
  .refine((value) => {
    // Runs after a failed http(s) check too (zod keeps checking): an unparsable URL is that error.
    const url = URL.canParse(value) ? new URL(value) : undefined;
    return !url || (url.search === '' && url.hash === '' && url.username === '' && url.password === '');
  }, 'must be a base URL without query, fragment or credentials')
  .transform((value) => value.replace(/\/+$/, ''));

const ConfigSchema = z.object({
  host: z.string().trim().min(1, 'must not be empty').default('127.0.0.1'),
  port: integer(0, 65535).default(4000),
  dataDir: z.string().trim().min(1, 'must not be empty').default('./data'),
  databaseUrl: optionalText,
  upstreamUrl: httpUrl.optional(),
  upstreamApiKey: optionalText,
  upstreamTimeoutMs: integer(1, 86_400_000).default(300_000),
  configFile: optionalText,
  apiKeys: z
    .string()
    .optional()
    .transform((value) =>
      (value ?? '')
        .split(',')
        .map((key) => key.trim())
        .filter((key) => key.length > 0),
    ),
  adminEmail: z.string().trim().toLowerCase().pipe(z.email('must be an email address')).optional(),
  registrationMode: z
    .enum(REGISTRATION_MODES, { error: 'must be one of open, approval, invite' })
    .default('approval'),
  hmacSecret: z.string().min(32, 'must be at least 32 characters').optional(),
  defaultKeyExpiry: z
    .string()
    .trim()
    .refine((value) => parseDurationMs(value) !== null, 'must be a duration such as 90d, 12h or 1y')
    .refine((value) => (parseDurationMs(value) ?? 0) <= MAX_KEY_EXPIRY_MS, 'must be at most 10y')
    .optional(),
  usageFlushMs: integer(10, 3_600_000).default(1000),
  usageBatchRows: integer(1, 100_000).optional(),
  // 1 KiB .. 1 GiB; the default, 25 MiB, fits chat requests with images and large embedding batches.
  maxBodyBytes: integer(1024, 1_073_741_824).default(26_214_400),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  trustProxy: z
    .string()
    .trim()
    .transform((value, context): number | string[] => {
      if (/^\d+$/.test(value)) {
        const hops = Number(value);
        if (hops >= 1 && hops <= 32) return hops;
      } else {
        const cidrs = value.split(',').map((entry) => entry.trim());
        if (cidrs.every(isCidr)) return cidrs;
      }
      context.addIssue({
        code: 'custom',
        message: 'must be a hop count (1-32) or comma-separated proxy addresses/CIDRs, e.g. 10.0.0.0/8,::1',
      });
      return z.NEVER;
    })
    .optional(),
  logFormat: z.enum(LOG_FORMATS, { error: 'must be json or pretty' }).optional(),
  publicUrl: baseUrl.optional(),
  githubClientId: optionalText,
  githubClientSecret: optionalText,
  githubUrl: baseUrl.default('https://github.com'),
  githubApiUrl: baseUrl.default('https://api.github.com'),
  oidcIssuer: baseUrl.optional(),
  oidcClientId: optionalText,
  oidcClientSecret: optionalText,
  oidcScopes: z
    .string()
    .trim()
    .transform((value) => value.split(/\s+/).filter((scope) => scope !== ''))
    .refine((scopes) => scopes.includes('openid'), 'must include openid')
    .default(['openid', 'email', 'profile']),
  oidcName: z.string().trim().min(1).max(60, 'must be at most 60 characters').default('SSO'),
  disableLocalAuth: z
    .enum(['1', '0', 'true', 'false'], { error: 'must be 1, 0, true or false' })
    .transform((value) => value === '1' || value === 'true')
    .default(false),
  webhookUrl: httpUrl.optional(),
  webhookSecret: z.string().min(16, 'must be at least 16 characters').optional(),
  defaultCompletionTokens: integer(0, 10_000_000).default(1024),
});

/** An IPv4/IPv6 address with an optional prefix length. */
function isCidr(text: string): boolean {
  const [address = '', prefix, extra] = text.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}

export type Config = z.infer<typeof ConfigSchema> & {
  /** Resolved: an absolute SQLite path or a postgres:// URL. */
  databaseUrl: string;
  dataDir: string;
};

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type ConfigFlags = Partial<Record<SettingName, string | undefined>>;

/** Reads `env` (process.env by default) and flags; throws ConfigError naming the variable. */
export function loadConfig(
  flags: ConfigFlags = {},
  env: Record<string, string | undefined> = process.env,
): Config {
  const raw: Record<string, string | undefined> = {};
  for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    const fromEnv = env[setting.env] ?? (name === 'databaseUrl' ? env.DATABASE_URL : undefined);
    const value = flags[name] ?? fromEnv;
    raw[name] = value === '' && name !== 'apiKeys' ? undefined : value;
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? 'config') as SettingName;
    const setting = SETTINGS[name];
    const given = flags[name] !== undefined ? setting.flag.split(' ')[0] : setting?.env;
    throw new ConfigError(given ?? name, `${issue?.message ?? 'invalid'} (got ${JSON.stringify(raw[name])})`);
  }
  checkSingleSignOn(
    parsed.data,
    (name) => (flags[name] !== undefined ? SETTINGS[name].flag.split(' ')[0] : SETTINGS[name].env) ?? name,
  );
  if (parsed.data.webhookUrl && !parsed.data.webhookSecret) {
    // The receiver verifies the signature with it; the HMAC secret that hashes keys is never shared.
    throw new ConfigError(SETTINGS.webhookSecret.env, 'is required when KEYTALLY_WEBHOOK_URL is set');
  }
  const dataDir = path.resolve(parsed.data.dataDir);
  const databaseUrl = parsed.data.databaseUrl ?? path.join(dataDir, 'keytally.db');
  return { ...parsed.data, dataDir, databaseUrl };
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/** Settings that only make sense together (single sign-on, decisions.md section 10). */
function checkSingleSignOn(
  config: z.infer<typeof ConfigSchema>,
  nameOf: (name: SettingName) => string,
): void {
  const fail = (name: SettingName, message: string): never => {
    throw new ConfigError(nameOf(name), message);
  };
  if (config.githubClientId && !config.githubClientSecret) {
    fail('githubClientSecret', `is required with ${nameOf('githubClientId')}`);
  }
  if (config.githubClientSecret && !config.githubClientId) {
    fail('githubClientId', `is required with ${nameOf('githubClientSecret')}`);
  }
  if (config.oidcClientId && !config.oidcIssuer)
    fail('oidcIssuer', `is required with ${nameOf('oidcClientId')}`);
  if (config.oidcIssuer && !config.oidcClientId)
    fail('oidcClientId', `is required with ${nameOf('oidcIssuer')}`);
  const sso = Boolean(config.githubClientId || config.oidcClientId);
  if (config.disableLocalAuth && !sso) {
    fail('disableLocalAuth', 'needs GitHub or OpenID Connect configured, or nobody could sign in');
  }
  // Callbacks are built from the public URL; a wildcard listen address is not one a browser can reach.
  if (sso && !config.publicUrl && WILDCARD_HOSTS.has(config.host)) {
    fail('publicUrl', `is required for single sign-on when ${nameOf('host')} is ${config.host}`);
  }
}

/** True when GitHub or OpenID Connect sign-in is configured. */
export function hasSingleSignOn(config: Config): boolean {
  return Boolean(config.githubClientId || config.oidcClientId);
}

export function isPostgresUrl(url: string): boolean {
  return url.startsWith('postgres://') || url.startsWith('postgresql://');
}
