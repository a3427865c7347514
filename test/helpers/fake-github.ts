import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local fake of GitHub's OAuth web flow (/login/oauth/authorize, /login/oauth/access_token, with
 * PKCE) and the REST endpoints keytally reads (/user, /user/emails). `authorize` signs in whoever
 * `signedIn` names, as github.com would for a user with an active session who already approved the app.
 */

export interface FakeGitHubUser {
  id: number;
  login: string;
  name: string | null;
  avatar_url?: string;
  emails: { email: string; primary: boolean; verified: boolean }[];
}

export interface FakeGitHub {
  url: string;
  clientId: string;
  clientSecret: string;
  users: Map<string, FakeGitHubUser>;
  /** The login of the user the next authorize request signs in. */
  signedIn: string;
  /** When set, /user answers this status (with an error body) instead of the user. */
  userStatus?: number;
  /** Requests seen, for assertions on what keytally sent (never the secrets themselves). */
  requests: { method: string; path: string }[];
  close(): Promise<void>;
}

export async function startFakeGitHub(users: FakeGitHubUser[]): Promise<FakeGitHub> {
  const codes = new Map<string, { login: string; challenge: string; redirectUri: string }>();
  const tokens = new Map<string, string>();
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const fake: FakeGitHub = {
    url: `http://127.0.0.1:${port}`,
    clientId: 'Iv1.fakegithubclient',
    clientSecret: 'fake-github-client-secret-0123456789',
    users: new Map(users.map((user) => [user.login, user])),
    signedIn: users[0]?.login ?? '',
    requests: [],
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', fake.url);
    fake.requests.push({ method: req.method ?? '', path: url.pathname });
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    req.on('end', () => {
      if (url.pathname === '/login/oauth/authorize') {
        const params = url.searchParams;
        const redirect = new URL(params.get('redirect_uri') ?? '');
        if (params.get('client_id') !== fake.clientId || params.get('code_challenge_method') !== 'S256') {
          redirect.searchParams.set('error', 'invalid_request');
        } else {
          const code = randomBytes(10).toString('hex');
          codes.set(code, {
            login: fake.signedIn,
            challenge: params.get('code_challenge') ?? '',
            redirectUri: params.get('redirect_uri') ?? '',
          });
          redirect.searchParams.set('code', code);
        }
        redirect.searchParams.set('state', params.get('state') ?? '');
        res.writeHead(302, { location: redirect.href });
        res.end();
        return;
      }
      if (url.pathname === '/login/oauth/access_token' && req.method === 'POST') {
        const form = new URLSearchParams(raw);
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        const challenge = createHash('sha256').update(verifier).digest('base64url');
        const ok =
          grant !== undefined &&
          form.get('client_id') === fake.clientId &&
          form.get('client_secret') === fake.clientSecret &&
          form.get('redirect_uri') === grant.redirectUri &&
          challenge === grant.challenge;
        // GitHub answers 200 with an error object when the code is bad.
        if (!ok || !grant) return json(res, 200, { error: 'bad_verification_code' });
        const token = `gho_${randomBytes(16).toString('hex')}`;
        tokens.set(token, grant.login);
        return json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
      }
      const login = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
      const user = login === undefined ? undefined : fake.users.get(login);
      if (!user) return json(res, 401, { message: 'Bad credentials' });
      if (url.pathname === '/user') {
        if (fake.userStatus) return json(res, fake.userStatus, { message: 'Server Error' });
        return json(res, 200, {
          id: user.id,
          login: user.login,
          name: user.name,
          avatar_url: user.avatar_url ?? '',
        });
      }
      if (url.pathname === '/user/emails') return json(res, 200, user.emails);
      json(res, 404, { message: 'Not Found' });
    });
  });
  return fake;
}
