import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  type IdentityListResponse,
  LinkIdentityRequest,
  type PendingLinkResponse,
  type SsoProviderDto,
} from '../../../shared/auth.ts';
import type { Config } from '../../config.ts';
import { BadRequestError, NotFoundError } from '../../errors.ts';
import { loginUser } from '../accounts.service.ts';
import type { AuthRuntime } from '../auth-runtime.ts';
import { LEGACY_USER_ID } from '../context.ts';
import { iso, toUserSummary } from '../dto.ts';
import { requireUser } from '../guards.ts';
import { constantTimeEqual } from '../hash.ts';
import { AUTH_BODY_LIMIT_BYTES, RateLimiter } from '../protection.ts';
import { createSession, isHttps, SESSION_COOKIE, setCredentialCookie } from '../sessions.service.ts';
import { findUserById } from '../users.repository.ts';
import { parseInput } from '../validation.ts';
import { GitHubProvider } from './github.ts';
import { listIdentitiesOfUser } from './identities.repository.ts';
import { OidcProvider } from './oidc.ts';
import {
  type LoginChecks,
  SSO_PROVIDER_IDS,
  SsoError,
  type SsoErrorCode,
  type SsoIdentity,
  type SsoProvider,
  type SsoProviderId,
} from './provider.ts';
import { seal, unseal } from './sealed.ts';
import { linkIdentityToUser, signInWithIdentity } from './sso.service.ts';

/**
 * Single sign-on routes on the reference's paths (reference-control section 3):
 * `GET /api/auth/{github,oidc}/login[?invite_code=]` and `/callback`, plus keytally's link
 * confirmation (`/api/auth/sso/link`) and the caller's identities (`/api/auth/identities`).
 * Every callback outcome other than a session is a redirect to `/login?error=<code>`.
 */

// The login state lives 10 minutes (the reference's Max-Age=600).
const LOGIN_STATE_TTL_MS = 600_000;
const LINK_TTL_MS = 600_000;
// 60 callbacks a minute per client address, one limiter for both providers (reference 3.3).
const CALLBACK_RATE_LIMIT = 60;
const LINK_COOKIE = 'kt_sso_link';
const LINK_PURPOSE = 'sso-link';
const AFTER_LOGIN_PATH = '/app/usage';

const stateCookieOf = (id: SsoProviderId) => `kt_sso_${id}`;
const callbackPathOf = (id: SsoProviderId) => `/api/auth/${id}/callback`;

const SealedChecks = z.object({
  state: z.string().min(1),
  codeVerifier: z.string().min(1),
  nonce: z.string().min(1),
  invite: z.string().optional(),
});
const SealedIdentity = z.object({
  provider: z.enum(['github', 'oidc']),
  issuer: z.string(),
  subject: z.string(),
  email: z.string(),
  emailVerified: z.boolean(),
  name: z.string(),
  avatarUrl: z.string(),
});
const LoginQuery = z.object({ invite_code: z.string().max(256).optional() });

export interface SsoRuntime {
  /** The configured providers that are ready for logins, in the reference's order. */
  readyProviders(): SsoProviderDto[];
}

export function createSsoProviders(rt: AuthRuntime): Map<SsoProviderId, SsoProvider> {
  const config = rt.config;
  const providers = new Map<SsoProviderId, SsoProvider>();
  if (config.githubClientId && config.githubClientSecret) {
    providers.set(
      'github',
      new GitHubProvider({
        clientId: config.githubClientId,
        clientSecret: config.githubClientSecret,
        webUrl: config.githubUrl,
        apiUrl: config.githubApiUrl,
      }),
    );
  }
  if (config.oidcIssuer && config.oidcClientId) {
    const oidc = new OidcProvider(
      {
        issuer: config.oidcIssuer,
        clientId: config.oidcClientId,
        clientSecret: config.oidcClientSecret,
        scopes: config.oidcScopes,
        label: config.oidcName,
      },
      rt.logger,
    );
    void oidc.discover();
    providers.set('oidc', oidc);
  }
  return providers;
}

export function registerSsoRoutes(app: FastifyInstance, rt: AuthRuntime): SsoRuntime {
  const providers = createSsoProviders(rt);
  app.addHook('onClose', async () => {
    for (const provider of providers.values()) provider.close();
  });
  const base = () => publicBaseUrl(app, rt.config);
  if (providers.size > 0) {
    // The URLs to register at the providers, once the listen address is known.
    app.addHook('onListen', (done) => {
      for (const id of providers.keys()) {
        rt.logger.info({ provider: id, callback: `${base()}${callbackPathOf(id)}` }, 'single sign-on ready');
      }
      done();
    });
  }
  const callbackLimiter = new RateLimiter(rt.now, CALLBACK_RATE_LIMIT);
  const linkLimiter = new RateLimiter(rt.now);

  for (const id of SSO_PROVIDER_IDS) {
    const provider = providers.get(id);
    if (!provider) continue;
    const redirectUri = () => `${base()}${callbackPathOf(id)}`;

    app.get(`/api/auth/${id}/login`, async (request, reply) => {
      const query = parseInput(LoginQuery, request.query);
      // Without KEYTALLY_PUBLIC_URL the callback goes to the listen address: a browser that came by
      // another name (localhost for 127.0.0.1) is sent there first, so the state cookie is set on
      // the host the callback returns to. With a public URL, a proxy may rewrite Host: no redirect.
      if (!rt.config.publicUrl && request.headers.host && request.headers.host !== new URL(base()).host) {
        return reply.redirect(`${base()}${request.url}`, 307);
      }
      const checks: LoginChecks = { state: randomToken(), codeVerifier: randomToken(), nonce: randomToken() };
      let target: URL;
      try {
        target = await provider.authorizationUrl(redirectUri(), checks);
      } catch (error) {
        return failLogin(request, reply, error);
      }
      const invite = query.invite_code?.trim();
      const sealed = seal(
        rt.hmacSecret,
        stateCookieOf(id),
        { ...checks, ...(invite ? { invite } : {}) },
        rt.now() + LOGIN_STATE_TTL_MS,
      );
      // One cookie per provider (the reference shares one, so two logins in two tabs clobber each
      // other), scoped to its callback. Lax: the callback is a top-level navigation from the provider.
      reply.setCookie(
        stateCookieOf(id),
        sealed,
        cookieOptions(request, rt.config, callbackPathOf(id), LOGIN_STATE_TTL_MS),
      );
      return reply.redirect(target.href, 307);
    });

    app.get(callbackPathOf(id), async (request, reply) => {
      if (!callbackLimiter.allows('sso-callback', request)) return toLogin(reply, 'rate_limited');
      const sealed = request.cookies?.[stateCookieOf(id)];
      reply.setCookie(stateCookieOf(id), '', cookieOptions(request, rt.config, callbackPathOf(id), -1));
      const parsedChecks = SealedChecks.safeParse(unseal(rt.hmacSecret, stateCookieOf(id), sealed, rt.now()));
      const query = new URL(request.url, 'http://callback').search;
      const state = new URLSearchParams(query).get('state') ?? '';
      if (!parsedChecks.success || !constantTimeEqual(parsedChecks.data.state, state)) {
        request.log.warn(
          { provider: id, hadCookie: Boolean(sealed) },
          'single sign-on callback with a wrong state',
        );
        return toLogin(reply, 'state_mismatch');
      }
      const checks = parsedChecks.data;
      const callbackUrl = new URL(redirectUri());
      callbackUrl.search = query;
      let identity: SsoIdentity;
      try {
        identity = await provider.finish(callbackUrl, redirectUri(), checks);
      } catch (error) {
        return failLogin(request, reply, error);
      }
      const outcome = await signInWithIdentity(rt, identity, checks.invite);
      if (outcome.kind === 'refused') return toLogin(reply, outcome.code);
      if (outcome.kind === 'link') {
        reply.setCookie(
          LINK_COOKIE,
          seal(rt.hmacSecret, LINK_PURPOSE, { identity: outcome.identity }, rt.now() + LINK_TTL_MS),
          cookieOptions(request, rt.config, '/api/auth/sso/', LINK_TTL_MS),
        );
        return reply.redirect(`/login?link=${id}`, 302);
      }
      const { token } = await createSession(rt, outcome.user.id);
      setCredentialCookie(request, reply, SESSION_COOKIE, token);
      return reply.redirect(AFTER_LOGIN_PATH, 302);
    });
  }

  const pendingLink = (request: FastifyRequest): SsoIdentity | undefined => {
    const parsed = z
      .object({ identity: SealedIdentity })
      .safeParse(unseal(rt.hmacSecret, LINK_PURPOSE, request.cookies?.[LINK_COOKIE], rt.now()));
    return parsed.success ? parsed.data.identity : undefined;
  };
  const labelOf = (id: string) => providers.get(id as SsoProviderId)?.label ?? id;

  app.get('/api/auth/sso/link', async (request): Promise<PendingLinkResponse> => {
    const identity = pendingLink(request);
    if (!identity)
      throw new NotFoundError('no sign-in is waiting to be linked; sign in with the provider again');
    return {
      provider: identity.provider,
      label: labelOf(identity.provider),
      email: identity.email,
      name: identity.name,
    };
  });

  // Linking needs the local account's password, whatever KEYTALLY_DISABLE_LOCAL_AUTH says: it is
  // the one proof that the owner of that account is the one signing in with the provider.
  app.post('/api/auth/sso/link', { bodyLimit: AUTH_BODY_LIMIT_BYTES }, async (request, reply) => {
    linkLimiter.hit('sso-link', request);
    const { password } = parseInput(LinkIdentityRequest, request.body);
    if (password === '') throw new BadRequestError('password is required');
    const identity = pendingLink(request);
    if (!identity)
      throw new NotFoundError('no sign-in is waiting to be linked; sign in with the provider again');
    const user = await loginUser(rt, identity.email, password);
    const row = await findUserById(rt.db, user.id);
    if (!row) throw new NotFoundError('user not found');
    await linkIdentityToUser(rt, row, identity);
    reply.setCookie(LINK_COOKIE, '', cookieOptions(request, rt.config, '/api/auth/sso/', -1));
    const { token } = await createSession(rt, user.id);
    setCredentialCookie(request, reply, SESSION_COOKIE, token);
    return { user: toUserSummary(user) };
  });

  app.delete('/api/auth/sso/link', async (request, reply) => {
    reply.setCookie(LINK_COOKIE, '', cookieOptions(request, rt.config, '/api/auth/sso/', -1));
    return { message: 'link cancelled' };
  });

  app.get('/api/auth/identities', async (request): Promise<IdentityListResponse> => {
    const auth = requireUser(request);
    if (auth.user.id === LEGACY_USER_ID) return { identities: [] };
    const rows = await listIdentitiesOfUser(rt.db, auth.user.id);
    return {
      identities: rows.map((row) => ({
        id: row.id,
        provider: row.provider,
        label: labelOf(row.provider),
        email: row.email,
        createdAt: iso(row.created_at),
        lastLoginAt: iso(row.last_login_at),
      })),
    };
  });

  return {
    readyProviders: () =>
      [...providers.values()]
        .filter((provider) => provider.ready())
        .map((provider) => ({
          id: provider.id,
          label: provider.label,
          loginUrl: `/api/auth/${provider.id}/login`,
        })),
  };
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

function toLogin(reply: FastifyReply, code: SsoErrorCode): FastifyReply {
  return reply.redirect(`/login?error=${code}`, 302);
}

/**
 * Provider failures go to the log with their cause (the reference logged none, issue #10677). Only
 * the cause's name, message and codes: openid-client attaches response bodies and token parts to
 * its errors, which have no place in a log.
 */
function failLogin(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  if (!(error instanceof SsoError)) throw error;
  request.log.warn(
    { code: error.code, cause: summariseCause(error.cause) },
    `single sign-on failed: ${error.message}`,
  );
  return toLogin(reply, error.code);
}

function summariseCause(cause: unknown): Record<string, unknown> | undefined {
  if (!(cause instanceof Error)) return undefined;
  const fields = cause as Error & { code?: unknown; error?: unknown; status?: unknown; cause?: unknown };
  const inner = fields.cause instanceof Error ? fields.cause : undefined;
  return {
    name: cause.name,
    message: cause.message,
    ...(typeof fields.code === 'string' ? { code: fields.code } : {}),
    // OAuth error responses: `error` (e.g. invalid_grant) and the HTTP status.
    ...(typeof fields.error === 'string' ? { error: fields.error } : {}),
    ...(typeof fields.status === 'number' ? { status: fields.status } : {}),
    ...(inner ? { inner: `${inner.name}: ${inner.message}` } : {}),
  };
}

function cookieOptions(request: FastifyRequest, config: Config, path: string, maxAgeMs: number) {
  return {
    path,
    httpOnly: true,
    sameSite: 'lax' as const,
    maxAge: maxAgeMs < 0 ? -1 : maxAgeMs / 1000,
    secure: isHttps(request) || config.publicUrl?.startsWith('https:') === true,
  };
}

/**
 * Where browsers reach keytally: KEYTALLY_PUBLIC_URL, else the listen address (config.ts refuses a
 * wildcard host without a public URL when single sign-on is on).
 */
export function publicBaseUrl(app: FastifyInstance, config: Config): string {
  if (config.publicUrl) return config.publicUrl;
  const address = app.server.address() as AddressInfo | null;
  const port = address?.port ?? config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${port}`;
}
