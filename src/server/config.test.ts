import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDurationMs } from './config.ts';

describe('loadConfig', () => {
  it('applies the defaults of decisions.md section 2', () => {
    const config = loadConfig({}, {});
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(4000);
    expect(config.dataDir).toBe(path.resolve('./data'));
    expect(config.databaseUrl).toBe(path.join(path.resolve('./data'), 'keytally.db'));
    expect(config.registrationMode).toBe('approval');
    expect(config.usageFlushMs).toBe(1000);
    // Unset: the recorder's BATCH_ROWS (1000).
    expect(config.usageBatchRows).toBeUndefined();
    expect(config.apiKeys).toEqual([]);
    expect(config.upstreamUrl).toBeUndefined();
  });

  it('reads environment variables, with DATABASE_URL as an alias', () => {
    const config = loadConfig(
      {},
      {
        KEYTALLY_PORT: '8080',
        DATABASE_URL: 'postgres://u@h/db',
        KEYTALLY_API_KEYS: ' a , b,,c ',
        KEYTALLY_ADMIN_EMAIL: ' Boss@Example.COM ',
        KEYTALLY_REGISTRATION_MODE: 'invite',
        KEYTALLY_DEFAULT_KEY_EXPIRY: '90d',
        KEYTALLY_USAGE_BATCH_ROWS: '500',
      },
    );
    expect(config.usageBatchRows).toBe(500);
    expect(config.port).toBe(8080);
    expect(config.databaseUrl).toBe('postgres://u@h/db');
    expect(config.apiKeys).toEqual(['a', 'b', 'c']);
    expect(config.adminEmail).toBe('boss@example.com');
    expect(config.registrationMode).toBe('invite');
    expect(config.defaultKeyExpiry).toBe('90d');
  });

  it('KEYTALLY_TRUST_PROXY: a hop count or proxy CIDRs; anything else names the variable', () => {
    expect(loadConfig({}, {}).trustProxy).toBeUndefined();
    expect(loadConfig({}, { KEYTALLY_TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({}, { KEYTALLY_TRUST_PROXY: '10.0.0.0/8, ::1,192.0.2.7' }).trustProxy).toEqual([
      '10.0.0.0/8',
      '::1',
      '192.0.2.7',
    ]);
    for (const bad of ['0', 'proxy', '10.0.0.0/33', '10.0.0.0/8,']) {
      expect(() => loadConfig({}, { KEYTALLY_TRUST_PROXY: bad })).toThrow(
        /^KEYTALLY_TRUST_PROXY: must be a hop count/,
      );
    }
  });

  it('lets a flag win over its environment variable', () => {
    const config = loadConfig({ port: '5000' }, { KEYTALLY_PORT: '6000' });
    expect(config.port).toBe(5000);
  });

  it.each([
    ['KEYTALLY_PORT', 'abc'],
    ['KEYTALLY_PORT', '70000'],
    ['KEYTALLY_UPSTREAM_URL', 'not a url'],
    ['KEYTALLY_REGISTRATION_MODE', 'closed'],
    ['KEYTALLY_HMAC_SECRET', 'short'],
    ['KEYTALLY_DEFAULT_KEY_EXPIRY', 'forever'],
    ['KEYTALLY_USAGE_FLUSH_MS', '-5'],
    ['KEYTALLY_ADMIN_EMAIL', 'nobody'],
  ])('rejects %s=%s naming the variable', (variable, value) => {
    let caught: unknown;
    try {
      loadConfig({}, { [variable]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).setting).toBe(variable);
    expect((caught as ConfigError).message).toContain(variable);
  });

  it('needs a webhook secret with a webhook URL, and reads the default completion reservation', () => {
    expect(() => loadConfig({}, { KEYTALLY_WEBHOOK_URL: 'http://127.0.0.1:9/hook' })).toThrow(
      /^KEYTALLY_WEBHOOK_SECRET: is required when KEYTALLY_WEBHOOK_URL is set$/,
    );
    expect(() =>
      loadConfig({}, { KEYTALLY_WEBHOOK_URL: 'ftp://x', KEYTALLY_WEBHOOK_SECRET: 'a'.repeat(16) }),
    ).toThrow(/KEYTALLY_WEBHOOK_URL/);
    const config = loadConfig(
      {},
      { KEYTALLY_WEBHOOK_URL: 'http://127.0.0.1:9/hook', KEYTALLY_WEBHOOK_SECRET: 'a'.repeat(16) },
    );
    expect(config.webhookUrl).toBe('http://127.0.0.1:9/hook');
    expect(config.defaultCompletionTokens).toBe(1024);
    expect(loadConfig({}, { KEYTALLY_DEFAULT_COMPLETION_TOKENS: '256' }).defaultCompletionTokens).toBe(256);
  });

  it('names the flag when the bad value came from a flag', () => {
    expect(() => loadConfig({ port: 'x' }, {})).toThrow(/--port/);
  });
});

describe('single sign-on settings', () => {
  const oidc = {
    KEYTALLY_OIDC_ISSUER: 'https://id.example.com/realms/main/',
    KEYTALLY_OIDC_CLIENT_ID: 'keytally',
  };

  it('reads them with their defaults; a trailing slash is dropped from base URLs', () => {
    const config = loadConfig({}, { ...oidc, KEYTALLY_PUBLIC_URL: 'https://keytally.example.com/' });
    expect(config.oidcIssuer).toBe('https://id.example.com/realms/main');
    expect(config.publicUrl).toBe('https://keytally.example.com');
    expect(config.oidcScopes).toEqual(['openid', 'email', 'profile']);
    expect(config.oidcName).toBe('SSO');
    expect(config.githubUrl).toBe('https://github.com');
    expect(config.githubApiUrl).toBe('https://api.github.com');
    expect(config.disableLocalAuth).toBe(false);
    expect(
      loadConfig(
        {},
        { ...oidc, KEYTALLY_OIDC_SCOPES: 'openid  email groups', KEYTALLY_DISABLE_LOCAL_AUTH: '1' },
      ),
    ).toMatchObject({ oidcScopes: ['openid', 'email', 'groups'], disableLocalAuth: true });
  });

  it.each([
    [{ KEYTALLY_GITHUB_CLIENT_ID: 'id' }, 'KEYTALLY_GITHUB_CLIENT_SECRET'],
    [{ KEYTALLY_GITHUB_CLIENT_SECRET: 'secret' }, 'KEYTALLY_GITHUB_CLIENT_ID'],
    [{ KEYTALLY_OIDC_CLIENT_ID: 'id' }, 'KEYTALLY_OIDC_ISSUER'],
    [{ KEYTALLY_OIDC_ISSUER: 'https://id.example.com' }, 'KEYTALLY_OIDC_CLIENT_ID'],
    [{ KEYTALLY_DISABLE_LOCAL_AUTH: '1' }, 'KEYTALLY_DISABLE_LOCAL_AUTH'],
    [{ ...oidc, KEYTALLY_DISABLE_LOCAL_AUTH: 'yes' }, 'KEYTALLY_DISABLE_LOCAL_AUTH'],
    [{ ...oidc, KEYTALLY_OIDC_SCOPES: 'email profile' }, 'KEYTALLY_OIDC_SCOPES'],
    [{ ...oidc, KEYTALLY_HOST: '0.0.0.0' }, 'KEYTALLY_PUBLIC_URL'],
    [{ KEYTALLY_PUBLIC_URL: 'keytally.example.com' }, 'KEYTALLY_PUBLIC_URL'],
    [{ KEYTALLY_PUBLIC_URL: 'https://keytally.example.com/?x=1' }, 'KEYTALLY_PUBLIC_URL'],
    [{ KEYTALLY_OIDC_ISSUER: 'ftp://id.example.com', KEYTALLY_OIDC_CLIENT_ID: 'x' }, 'KEYTALLY_OIDC_ISSUER'],
  ])('refuses %j naming %s', (env, variable) => {
    expect(() => loadConfig({}, env)).toThrow(new RegExp(`^${variable}: `));
  });

  it('accepts a wildcard host once the public URL says where browsers come from', () => {
    const config = loadConfig(
      {},
      { ...oidc, KEYTALLY_HOST: '0.0.0.0', KEYTALLY_PUBLIC_URL: 'https://kt.example.com' },
    );
    expect(config.publicUrl).toBe('https://kt.example.com');
  });
});

describe('parseDurationMs', () => {
  it('parses days, years and hours', () => {
    expect(parseDurationMs('90d')).toBe(90 * 86_400_000);
    expect(parseDurationMs('1y')).toBe(365 * 86_400_000);
    expect(parseDurationMs('24h')).toBe(86_400_000);
    expect(parseDurationMs('0d')).toBeNull();
    expect(parseDurationMs('abc')).toBeNull();
  });
});
