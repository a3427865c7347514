import { randomHex } from '../../src/server/auth/hash.ts';
import { STRONG_PASSWORD } from './support.ts';

/**
 * The authorization matrix's table (authorization-matrix.test.ts runs it): every caller, every
 * route, and the exact status each cell must answer.
 */

export const LEGACY_KEY = 'matrix-legacy-key-0123456789';

/** Keys by owner and stored scopes. */
export const KEY_PRINCIPALS = {
  userInference: { owner: 'user', scopes: 'inference' },
  userUsage: { owner: 'user', scopes: 'usage' },
  userKeys: { owner: 'user', scopes: 'keys' },
  userFull: { owner: 'user', scopes: 'inference,usage,keys' },
  adminAdmin: { owner: 'admin', scopes: 'admin' },
  adminDefault: { owner: 'admin', scopes: 'inference,usage' },
  adminAll: { owner: 'admin', scopes: 'inference,usage,keys,admin' },
} as const;
export type KeyPrincipal = keyof typeof KEY_PRINCIPALS;
export const KEY_NAMES = Object.keys(KEY_PRINCIPALS) as KeyPrincipal[];

export const PRINCIPALS = [
  'anonymous',
  'user',
  'otherUser',
  'admin',
  'legacy',
  'revokedKey',
  'expiredKey',
  'disabledKey',
  'pendingUser',
  'disabledUser',
  'crossSite',
  ...KEY_NAMES,
] as const;
export type Principal = (typeof PRINCIPALS)[number];

export interface World {
  userId: string;
  userEmail: string;
  userKey: { id: string; key: string };
  targetUserId: string;
  inviteId: string;
  headers: Record<Principal, { headers: Record<string, string>; cookies: Record<string, string> }>;
}

interface Route {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: (w: World) => string;
  body?: (w: World) => Record<string, unknown>;
  /** Expected status per principal. */
  expect: Record<Principal, number>;
}

type Row = Record<Principal, number>;
const INVALID = {
  anonymous: 401,
  revokedKey: 401,
  expiredKey: 401,
  disabledKey: 401,
  pendingUser: 401,
  disabledUser: 401,
};

/** What a route needs from a key: a scope, every scope of its owner (`full`), or nothing. */
type Need = 'inference' | 'usage' | 'keys' | 'admin' | 'full' | null;

/** Each key principal: `ok` when its scopes cover `need`, else 403; `overrides` for the exceptions. */
function keyCells(need: Need, ok: number, overrides: Partial<Record<KeyPrincipal, number>> = {}) {
  const cells = {} as Record<KeyPrincipal, number>;
  for (const name of KEY_NAMES) {
    const { owner, scopes } = KEY_PRINCIPALS[name];
    const has = scopes.split(',');
    const full = owner === 'admin' ? ['inference', 'usage', 'keys', 'admin'] : ['inference', 'usage', 'keys'];
    const allowed =
      need === null || (need === 'full' ? full.every((s) => has.includes(s)) : has.includes(need));
    cells[name] = overrides[name] ?? (allowed ? ok : 403);
  }
  return cells;
}

/** Routes any signed-in caller may use; cross-site (an admin's cookie) passes only when safe. */
const userRoute = (
  ok: number,
  legacy: number,
  safe: boolean,
  need: Need,
  overrides: Partial<Record<KeyPrincipal, number>> = {},
): Row => ({
  ...INVALID,
  user: ok,
  otherUser: ok,
  admin: ok,
  legacy,
  crossSite: safe ? ok : 403,
  // keys: `ok` when their scopes cover the route's need, else 403 naming the missing scope
  ...keyCells(need, ok, overrides),
});
const adminRoute = (ok: number, safe: boolean): Row => ({
  ...INVALID,
  user: 403,
  otherUser: 403,
  admin: ok,
  legacy: ok,
  crossSite: safe ? ok : 403,
  // users' keys can never hold `admin`; admins' keys pass only with it
  ...keyCells('admin', ok, { userInference: 403, userUsage: 403, userKeys: 403, userFull: 403 }),
});
/** Pre-authentication routes: the outcome depends on the body, not the caller; CSRF still applies. */
const publicRoute = (ok: number, safe: boolean): Row => ({
  anonymous: ok,
  user: ok,
  otherUser: ok,
  admin: ok,
  legacy: ok,
  revokedKey: ok,
  expiredKey: ok,
  disabledKey: ok,
  pendingUser: ok,
  disabledUser: ok,
  crossSite: safe ? ok : 403,
  ...keyCells(null, ok),
});
/** Routes on the user's own key: only its owner reaches it; for everyone else it does not exist. */
const ownKeyRoute = (): Row => ({
  ...userRoute(404, 404, false, 'keys', { userKeys: 200, userFull: 200, adminAll: 404 }),
  user: 200,
});

export const ROUTES: Route[] = [
  { name: 'status', method: 'GET', url: () => '/api/auth/status', expect: publicRoute(200, true) },
  {
    name: 'register',
    method: 'POST',
    url: () => '/api/auth/register',
    body: () => ({ email: `new-${randomHex(4)}@example.test`, password: STRONG_PASSWORD }),
    expect: publicRoute(201, false),
  },
  {
    name: 'login',
    method: 'POST',
    url: () => '/api/auth/login',
    body: (w) => ({ email: w.userEmail, password: STRONG_PASSWORD }),
    expect: publicRoute(200, false),
  },
  {
    name: 'token-login',
    method: 'POST',
    url: () => '/api/auth/token-login',
    body: (w) => ({ token: w.userKey.key }),
    expect: publicRoute(200, false),
  },
  { name: 'logout', method: 'POST', url: () => '/api/auth/logout', expect: publicRoute(200, false) },
  { name: 'me', method: 'GET', url: () => '/api/auth/me', expect: userRoute(200, 200, true, null) },
  {
    name: 'profile',
    method: 'PUT',
    url: () => '/api/auth/profile',
    body: () => ({ name: 'Renamed' }),
    expect: userRoute(200, 400, false, 'full'),
  },
  {
    name: 'password',
    method: 'PUT',
    url: () => '/api/auth/password',
    body: () => ({ current_password: STRONG_PASSWORD, new_password: 'another strong password' }),
    expect: userRoute(200, 400, false, 'full'),
  },
  {
    name: 'sessions',
    method: 'DELETE',
    url: () => '/api/auth/sessions',
    expect: userRoute(200, 400, false, 'full'),
  },
  {
    name: 'create key',
    method: 'POST',
    url: () => '/api/auth/api-keys',
    body: () => ({ name: 'matrix' }),
    // a new key gets inference + usage: a keys-only key cannot grant them
    expect: userRoute(201, 403, false, 'keys', { userKeys: 403 }),
  },
  {
    name: 'create key with scopes',
    method: 'POST',
    url: () => '/api/auth/api-keys',
    body: () => ({ name: 'matrix', scopes: ['keys'] }),
    expect: userRoute(201, 403, false, 'keys'),
  },
  {
    name: 'create key with the admin scope',
    method: 'POST',
    url: () => '/api/auth/api-keys',
    body: () => ({ name: 'matrix', scopes: ['admin'] }),
    // only admins' keys may have it, and only a key that has it may grant it
    expect: { ...userRoute(403, 403, false, 'keys', { adminAll: 201 }), admin: 201 },
  },
  {
    name: 'list keys',
    method: 'GET',
    url: () => '/api/auth/api-keys',
    expect: userRoute(200, 200, true, 'keys'),
  },
  {
    name: "revoke the user's key",
    method: 'DELETE',
    url: (w) => `/api/auth/api-keys/${w.userKey.id}`,
    expect: ownKeyRoute(),
  },
  {
    name: "disable the user's key",
    method: 'PATCH',
    url: (w) => `/api/auth/api-keys/${w.userKey.id}`,
    body: () => ({ disabled: true }),
    expect: ownKeyRoute(),
  },
  {
    name: "rotate the user's key",
    method: 'POST',
    url: (w) => `/api/auth/api-keys/${w.userKey.id}/rotate`,
    body: () => ({ grace: 0 }),
    expect: ownKeyRoute(),
  },
  { name: 'usage', method: 'GET', url: () => '/api/auth/usage', expect: userRoute(200, 200, true, 'usage') },
  {
    name: 'usage sources',
    method: 'GET',
    url: () => '/api/auth/usage/sources',
    expect: userRoute(200, 200, true, 'usage'),
  },
  { name: 'admin users', method: 'GET', url: () => '/api/auth/admin/users', expect: adminRoute(200, true) },
  {
    name: 'admin role',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/role`,
    body: () => ({ role: 'admin' }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin status',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/status`,
    body: () => ({ status: 'disabled' }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin password',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/password`,
    body: () => ({ password: 'reset by an admin 1' }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin delete user',
    method: 'DELETE',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}`,
    expect: adminRoute(200, false),
  },
  {
    name: 'admin list keys',
    method: 'GET',
    url: (w) => `/api/auth/admin/api-keys?user_id=${w.userId}`,
    expect: adminRoute(200, true),
  },
  {
    name: 'admin disable key',
    method: 'PATCH',
    url: (w) => `/api/auth/admin/api-keys/${w.userKey.id}`,
    body: () => ({ disabled: true }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin features',
    method: 'GET',
    url: () => '/api/auth/admin/features',
    expect: adminRoute(200, true),
  },
  {
    name: 'admin read permissions',
    method: 'GET',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/permissions`,
    expect: adminRoute(200, true),
  },
  {
    name: 'admin set permissions',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/permissions`,
    body: () => ({ chat: false }),
    expect: adminRoute(200, false),
  },
  {
    name: 'admin set model allowlist',
    method: 'PUT',
    url: (w) => `/api/auth/admin/users/${w.targetUserId}/models`,
    body: () => ({ enabled: true, models: ['demo'] }),
    expect: adminRoute(200, false),
  },
  { name: '/metrics', method: 'GET', url: () => '/metrics', expect: adminRoute(200, true) },
  {
    name: 'admin revoke key',
    method: 'DELETE',
    url: (w) => `/api/auth/admin/api-keys/${w.userKey.id}`,
    expect: adminRoute(200, false),
  },
  {
    name: 'admin create invite',
    method: 'POST',
    url: () => '/api/auth/admin/invites',
    body: () => ({}),
    expect: adminRoute(201, false),
  },
  {
    name: 'admin list invites',
    method: 'GET',
    url: () => '/api/auth/admin/invites',
    expect: adminRoute(200, true),
  },
  {
    name: 'admin delete invite',
    method: 'DELETE',
    url: (w) => `/api/auth/admin/invites/${w.inviteId}`,
    expect: adminRoute(200, false),
  },
  { name: 'admin usage', method: 'GET', url: () => '/api/auth/admin/usage', expect: adminRoute(200, true) },
  {
    name: 'admin usage sources',
    method: 'GET',
    url: () => '/api/auth/admin/usage/sources',
    expect: adminRoute(200, true),
  },
  // /v1/*: every valid caller passes; cookie-authenticated writes from another site do not
  {
    name: '/v1/models',
    method: 'GET',
    url: () => '/v1/models',
    expect: userRoute(200, 200, true, 'inference'),
  },
  {
    name: '/v1/chat/completions',
    method: 'POST',
    url: () => '/v1/chat/completions',
    body: () => ({ model: 'demo', messages: [{ role: 'user', content: 'hello' }] }),
    expect: userRoute(200, 200, false, 'inference'),
  },
  {
    name: '/v1/embeddings',
    method: 'POST',
    url: () => '/v1/embeddings',
    body: () => ({ model: 'demo', input: 'hello' }),
    expect: userRoute(200, 200, false, 'inference'),
  },
  {
    name: '/v1/usage',
    method: 'GET',
    url: () => '/v1/usage',
    // the calling key's own usage: sessions and legacy keys have none
    expect: { ...userRoute(403, 403, true, 'usage', {}), ...keyCells('usage', 200) },
  },
];
