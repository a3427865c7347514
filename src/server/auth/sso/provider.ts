/** What every single sign-on provider offers the routes (GitHub OAuth, OpenID Connect). */

export type SsoProviderId = 'github' | 'oidc';
export const SSO_PROVIDER_IDS: readonly SsoProviderId[] = ['github', 'oidc'];

/** Who the provider says signed in. */
export interface SsoIdentity {
  provider: SsoProviderId;
  /** The OIDC issuer or the GitHub base URL: part of the identity's key. */
  issuer: string;
  subject: string;
  /** Lowercased; '' when the provider sent none. */
  email: string;
  /** Only a verified email counts for roles, gating and linking. */
  emailVerified: boolean;
  name: string;
  avatarUrl: string;
}

/** The per-login secrets kept in the sealed state cookie until the callback. */
export interface LoginChecks {
  state: string;
  codeVerifier: string;
  nonce: string;
}

/**
 * Why a login failed, as the `error` query parameter of /login. The message stays in the server
 * log; the page shows a fixed text per code.
 */
export type SsoErrorCode =
  | 'state_mismatch'
  | 'access_denied'
  | 'provider_error'
  | 'provider_unavailable'
  | 'invite_required'
  | 'invalid_invite'
  | 'pending_approval'
  | 'account_disabled'
  | 'rate_limited'
  | 'link_failed';

export class SsoError extends Error {
  constructor(
    readonly code: SsoErrorCode,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = 'SsoError';
  }
}

export interface SsoProvider {
  readonly id: SsoProviderId;
  /** The button label ("Sign in with <label>"). */
  readonly label: string;
  /** False while OpenID Connect discovery has not succeeded (GitHub is always ready). */
  ready(): boolean;
  /** The provider's authorization URL for one login; throws SsoError('provider_unavailable'). */
  authorizationUrl(redirectUri: string, checks: LoginChecks): Promise<URL>;
  /** Exchanges the callback's code and returns the identity; throws SsoError. */
  finish(callbackUrl: URL, redirectUri: string, checks: LoginChecks): Promise<SsoIdentity>;
  close(): void;
}

/** Bounds every call to a provider (the reference uses 30 s for the exchange, 10 s for GitHub's API). */
export const PROVIDER_TIMEOUT_MS = 10_000;

/** An avatar only when it is an http(s) URL that fits the column (it ends up in an <img src>). */
export function safeAvatarUrl(value: unknown): string {
  if (typeof value !== 'string' || value.length > 512 || !/^https?:\/\/[^\s]+$/i.test(value)) return '';
  return value;
}

export function clip(value: string, max = 255): string {
  return value.trim().slice(0, max);
}
