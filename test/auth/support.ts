import { randomBytes, scryptSync } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { CreatedApiKeyResponse } from '../../src/shared/auth.ts';

let ipCounter = 0;

/** A fresh client address per call, so the 5/min/IP limiter only bites where a test wants it. */
export function freshIp(): string {
  ipCounter += 1;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

export function setCookieHeaders(response: LightMyRequestResponse): string[] {
  const raw = response.headers['set-cookie'];
  if (raw === undefined) return [];
  return Array.isArray(raw) ? raw : [raw];
}

/** The value a Set-Cookie header gives `name`, or undefined. */
export function cookieValue(response: LightMyRequestResponse, name: string): string | undefined {
  for (const header of setCookieHeaders(response)) {
    const [pair] = header.split(';');
    const eq = pair?.indexOf('=') ?? -1;
    if (pair && eq > 0 && pair.slice(0, eq) === name) return decodeURIComponent(pair.slice(eq + 1));
  }
  return undefined;
}

export const STRONG_PASSWORD = 'correct horse battery staple';

export interface Account {
  id: string;
  email: string;
  session: string;
}

/** Registers through the API and returns the session token from the cookie. */
export async function registerAccount(
  app: FastifyInstance,
  email: string,
  name = email.split('@')[0] ?? email,
  password = STRONG_PASSWORD,
): Promise<Account> {
  const response = await app.inject({
    method: 'POST',
    url: '/api/auth/register',
    remoteAddress: freshIp(),
    payload: { email, password, name },
  });
  if (response.statusCode !== 201)
    throw new Error(`register ${email}: ${response.statusCode} ${response.body}`);
  const session = cookieValue(response, 'session');
  if (!session) throw new Error(`register ${email}: no session cookie`);
  return { id: response.json().user.id, email, session };
}

export async function login(app: FastifyInstance, email: string, password = STRONG_PASSWORD) {
  return app.inject({
    method: 'POST',
    url: '/api/auth/login',
    remoteAddress: freshIp(),
    payload: { email, password },
  });
}

export async function createKey(
  app: FastifyInstance,
  session: string,
  body: Record<string, unknown> = { name: 'ci-runner' },
): Promise<CreatedApiKeyResponse> {
  const response = await app.inject({
    method: 'POST',
    url: '/api/auth/api-keys',
    cookies: { session },
    payload: body,
  });
  if (response.statusCode !== 201) throw new Error(`create key: ${response.statusCode} ${response.body}`);
  return response.json();
}

/**
 * A stored password hash in keytally's format with cheap scrypt parameters (N=2^10). The verifier
 * reads the parameters from the stored string, so factory users can log in without paying the
 * production cost (N=2^15, ~100 ms) on every attempt; newly set passwords still use the real one.
 */
export function cheapPasswordHash(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 });
  return ['scrypt', 1024, 8, 1, salt.toString('base64url'), hash.toString('base64url')].join('$');
}
