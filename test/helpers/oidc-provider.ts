import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/**
 * A real OpenID provider in-process (`oidc-provider`, a certified implementation) for the single
 * sign-on tests: discovery, authorization with its own login page (any password; the login names a
 * test user) and consent page, token endpoint, JWKS.
 */

export interface TestOidcUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  preferred_username?: string;
  picture?: string;
}

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Test users by login name (= their `sub` unless the entry says otherwise); editable between logins. */
  users: Map<string, TestOidcUser>;
  /** When true, the token endpoint's ID token has its payload changed but its signature kept. */
  tamperIdToken: boolean;
  /** The last ID token the token endpoint issued (as signed, before any tampering). */
  lastIdToken: string | undefined;
  close(): Promise<void>;
}

export async function startOidcProvider(options: {
  users: TestOidcUser[];
  port?: number;
}): Promise<TestOidcProvider> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const users = new Map(options.users.map((user) => [user.sub, user]));
  const clientId = 'keytally-test';
  const clientSecret = 'keytally-test-client-secret-0123456789';
  const ttl = (seconds: number) => () => seconds;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        // A loopback redirect URI matches any port (RFC 8252 section 7.3, `native` clients), so
        // every keytally a test starts on 127.0.0.1 can use this one client.
        application_type: 'native',
        redirect_uris: ['http://127.0.0.1/api/auth/oidc/callback'],
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    pkce: { required: () => true },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'picture'],
    },
    // Claims of the requested scopes go into the ID token (keytally reads the ID token only).
    conformIdTokenClaims: false,
    findAccount: async (_ctx, id) => {
      const user = users.get(id);
      if (!user) return undefined;
      return { accountId: id, claims: async () => ({ ...user }) };
    },
    ttl: {
      AccessToken: ttl(600),
      AuthorizationCode: ttl(60),
      IdToken: ttl(600),
      Grant: ttl(600),
      Interaction: ttl(600),
      Session: ttl(600),
    },
    features: { devInteractions: { enabled: true } },
  });
  const handle: TestOidcProvider = {
    issuer,
    clientId,
    clientSecret,
    users,
    tamperIdToken: false,
    lastIdToken: undefined,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as { id_token?: unknown } | undefined;
    if (ctx.path === '/token' && typeof body?.id_token === 'string') handle.lastIdToken = body.id_token;
    if (handle.tamperIdToken && ctx.path === '/token' && typeof body?.id_token === 'string') {
      const [header, payload, signature] = body.id_token.split('.');
      const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
      // The classic forgery: someone else's verified email, under the original signature.
      const forged = { ...claims, email: 'boss@example.com', email_verified: true };
      body.id_token = `${header}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`;
    }
  });
  server.on('request', provider.callback());
  return handle;
}
