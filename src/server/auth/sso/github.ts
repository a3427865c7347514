import { z } from 'zod';
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
 * GitHub's OAuth web flow (authorization code + PKCE S256 + state) and its REST API. Base URLs are
 * settings, for GitHub Enterprise Server and for tests against a local fake.
 */

const SCOPES = 'read:user user:email';

const TokenResponse = z.object({ access_token: z.string().min(1) });
// `id` must be a positive integer: the reference parses an error body as id 0 and so maps every
// failed /user call onto one shared account "0".
const UserResponse = z.object({
  id: z.number().int().positive(),
  login: z.string().min(1),
  name: z.string().nullish(),
  avatar_url: z.string().nullish(),
});
const EmailsResponse = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));

export interface GitHubSettings {
  clientId: string;
  clientSecret: string;
  /** e.g. https://github.com */
  webUrl: string;
  /** e.g. https://api.github.com */
  apiUrl: string;
}

export class GitHubProvider implements SsoProvider {
  readonly id = 'github' as const;
  readonly label = 'GitHub';

  constructor(private readonly settings: GitHubSettings) {}

  ready(): boolean {
    return true;
  }

  close(): void {}

  async authorizationUrl(redirectUri: string, checks: LoginChecks): Promise<URL> {
    const url = new URL(`${this.settings.webUrl}/login/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: this.settings.clientId,
      redirect_uri: redirectUri,
      scope: SCOPES,
      state: checks.state,
      code_challenge: await challengeOf(checks.codeVerifier),
      code_challenge_method: 'S256',
    }).toString();
    return url;
  }

  async finish(callbackUrl: URL, redirectUri: string, checks: LoginChecks): Promise<SsoIdentity> {
    const params = callbackUrl.searchParams;
    const error = params.get('error');
    if (error === 'access_denied') throw new SsoError('access_denied', 'the user declined at GitHub');
    if (error) throw new SsoError('provider_error', `GitHub answered error=${error}`);
    const code = params.get('code');
    if (!code) throw new SsoError('provider_error', 'the callback has no authorization code');

    const token = await this.call(
      'token',
      `${this.settings.webUrl}/login/oauth/access_token`,
      TokenResponse,
      {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          client_id: this.settings.clientId,
          client_secret: this.settings.clientSecret,
          code,
          redirect_uri: redirectUri,
          code_verifier: checks.codeVerifier,
        }).toString(),
      },
    );
    const auth = {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${token.access_token}`,
      'user-agent': 'keytally',
      'x-github-api-version': '2022-11-28',
    };
    const user = await this.call('/user', `${this.settings.apiUrl}/user`, UserResponse, { headers: auth });
    const emails = await this.call('/user/emails', `${this.settings.apiUrl}/user/emails`, EmailsResponse, {
      headers: auth,
    });
    // Verified addresses only: the primary one if verified, else the first verified one. The public
    // profile email is not used (the reference counts any GitHub email as verified).
    const verified = emails.filter((entry) => entry.verified);
    const email = (verified.find((entry) => entry.primary) ?? verified[0])?.email.trim().toLowerCase() ?? '';
    return {
      provider: 'github',
      issuer: this.settings.webUrl,
      subject: String(user.id),
      email,
      emailVerified: email !== '',
      name: clip(user.name?.trim() || user.login),
      avatarUrl: safeAvatarUrl(user.avatar_url),
    };
  }

  /** One GitHub call: a non-2xx status or an unexpected body is a provider error, never a default. */
  private async call<T>(what: string, url: string, schema: z.ZodType<T>, init: RequestInit): Promise<T> {
    let response: Response;
    try {
      response = await fetch(url, {
        ...init,
        redirect: 'error',
        signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
      });
    } catch (cause) {
      throw new SsoError('provider_error', `GitHub ${what} request failed`, { cause });
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) {
      throw new SsoError('provider_error', `GitHub ${what} answered HTTP ${response.status}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new SsoError('provider_error', `GitHub ${what} answered a body that is not JSON`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      // The token endpoint answers 200 with {"error": "bad_verification_code", ...} on failure.
      const reason = (body as { error?: unknown })?.error;
      throw new SsoError(
        'provider_error',
        `GitHub ${what} answered an unexpected body${typeof reason === 'string' ? ` (error=${reason})` : ''}`,
      );
    }
    return parsed.data;
  }
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return Buffer.from(digest).toString('base64url');
}
