import * as client from 'openid-client';
import type { Logger } from 'pino';
import {
  clip,
  type LoginChecks,
  PROVIDER_TIMEOUT_MS,
  SsoError,
  type SsoIdentity,
  type SsoProvider,
  safeAvatarUrl,
} from './provider.ts';

/**
 * OpenID Connect through openid-client: discovery, authorization code flow with PKCE (S256), state
 * and nonce, and the ID token's signature checked against the issuer's JWKS (non-repudiation
 * checks; without them openid-client trusts the token endpoint's TLS alone, and a tampered token
 * relayed by anything in between would pass).
 *
 * Discovery runs at start-up without blocking it. A failure is logged and retried with backoff
 * (the reference drops the provider silently); a login while it is down retries at once, and
 * `/api/auth/status` lists `oidc` only once discovery succeeded.
 */

export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  scopes: string[];
  label: string;
}

// 5 s, 10 s, 20 s, … capped at 5 minutes.
const RETRY_FIRST_MS = 5_000;
const RETRY_MAX_MS = 300_000;
const DISCOVERY_TIMEOUT_S = 30;

export class OidcProvider implements SsoProvider {
  readonly id = 'oidc' as const;
  readonly label: string;
  private configuration: client.Configuration | undefined;
  private discovering: Promise<client.Configuration | undefined> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = RETRY_FIRST_MS;
  private closed = false;

  constructor(
    private readonly settings: OidcSettings,
    private readonly logger: Logger,
  ) {
    this.label = settings.label;
  }

  ready(): boolean {
    return this.configuration !== undefined;
  }

  /** Starts discovery (idempotent while one is in flight); resolves to the configuration or undefined. */
  discover(): Promise<client.Configuration | undefined> {
    if (this.configuration) return Promise.resolve(this.configuration);
    this.discovering ??= this.runDiscovery().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  private async runDiscovery(): Promise<client.Configuration | undefined> {
    const issuer = new URL(this.settings.issuer);
    try {
      const configuration = await client.discovery(
        issuer,
        this.settings.clientId,
        undefined,
        this.settings.clientSecret ? client.ClientSecretPost(this.settings.clientSecret) : client.None(),
        {
          timeout: DISCOVERY_TIMEOUT_S,
          // http:// issuers: local development and in-cluster identity providers.
          execute: [
            ...(issuer.protocol === 'http:' ? [client.allowInsecureRequests] : []),
            client.enableNonRepudiationChecks,
          ],
        },
      );
      configuration.timeout = PROVIDER_TIMEOUT_MS / 1000;
      if (this.closed) return undefined;
      this.configuration = configuration;
      clearTimeout(this.retryTimer);
      this.logger.info({ issuer: this.settings.issuer }, 'OpenID Connect discovery succeeded');
      return configuration;
    } catch (error) {
      if (this.closed) return undefined;
      this.logger.warn(
        { err: error, issuer: this.settings.issuer, retryInMs: this.retryDelayMs },
        'OpenID Connect discovery failed; single sign-on with it is unavailable until a retry succeeds',
      );
      this.scheduleRetry();
      return undefined;
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.discover();
    }, delay);
    this.retryTimer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
  }

  private async requireConfiguration(): Promise<client.Configuration> {
    const configuration = this.configuration ?? (await this.discover());
    if (!configuration) {
      throw new SsoError(
        'provider_unavailable',
        `OpenID Connect issuer ${this.settings.issuer} is unreachable`,
      );
    }
    return configuration;
  }

  async authorizationUrl(redirectUri: string, checks: LoginChecks): Promise<URL> {
    const configuration = await this.requireConfiguration();
    return client.buildAuthorizationUrl(configuration, {
      redirect_uri: redirectUri,
      scope: this.settings.scopes.join(' '),
      state: checks.state,
      nonce: checks.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
    });
  }

  async finish(callbackUrl: URL, _redirectUri: string, checks: LoginChecks): Promise<SsoIdentity> {
    const configuration = await this.requireConfiguration();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      // The redirect_uri sent to the token endpoint is callbackUrl without its query.
      tokens = await client.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      if (error instanceof client.AuthorizationResponseError && error.error === 'access_denied') {
        throw new SsoError('access_denied', 'the user declined at the identity provider', { cause: error });
      }
      throw new SsoError('provider_error', 'OpenID Connect code exchange or ID token validation failed', {
        cause: error,
      });
    }
    const claims = tokens.claims();
    if (!claims || typeof claims.sub !== 'string' || claims.sub === '') {
      throw new SsoError('provider_error', 'the ID token has no subject');
    }
    const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : '';
    const name = [claims.name, claims.preferred_username, email.split('@')[0]].find(
      (value): value is string => typeof value === 'string' && value.trim() !== '',
    );
    return {
      provider: 'oidc',
      issuer: claims.iss,
      subject: claims.sub,
      email,
      // Verified only when the claim is present and true (reference section 3.4).
      emailVerified: email !== '' && claims.email_verified === true,
      name: clip(name ?? claims.sub),
      avatarUrl: safeAvatarUrl(claims.picture),
    };
  }
}
