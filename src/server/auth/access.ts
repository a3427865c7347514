import { BlockList, isIP } from 'node:net';
import { KEY_SCOPES, type KeyScope } from '../../shared/access.ts';
import { BadRequestError } from '../errors.ts';
import type { Role } from './context.ts';

/**
 * The per-key access rules (issue 14): scopes, model globs and IP allowlists, compiled once per
 * credential-cache entry so a request's check is a few set and regex lookups, never a query.
 */

/** `all` (keys from before scopes; full rights, as in LocalAI) or an explicit set. */
export type KeyScopes = 'all' | ReadonlySet<KeyScope>;

export function parseScopes(text: string): KeyScopes {
  if (text === 'all') return 'all';
  const scopes = new Set<KeyScope>();
  for (const part of text.split(',')) {
    if ((KEY_SCOPES as readonly string[]).includes(part)) scopes.add(part as KeyScope);
  }
  return scopes;
}

export function formatScopes(scopes: KeyScopes): string {
  return scopes === 'all' ? 'all' : KEY_SCOPES.filter((scope) => scopes.has(scope)).join(',');
}

export function scopeList(scopes: KeyScopes): ('all' | KeyScope)[] {
  return scopes === 'all' ? ['all'] : KEY_SCOPES.filter((scope) => scopes.has(scope));
}

/** The scopes an owner of `role` can use at all: `admin` is for admins' keys only. */
export function scopesOfRole(role: Role): readonly KeyScope[] {
  return role === 'admin' ? KEY_SCOPES : KEY_SCOPES.filter((scope) => scope !== 'admin');
}

export function hasScope(scopes: KeyScopes, scope: KeyScope): boolean {
  return scopes === 'all' || scopes.has(scope);
}

/** The scopes of `role` that `scopes` lacks: empty when the key has every right its owner has. */
export function missingForFullRights(scopes: KeyScopes, role: Role): KeyScope[] {
  return scopesOfRole(role).filter((scope) => !hasScope(scopes, scope));
}

/**
 * What a path needs from a key: a scope, `full` (account changes and anything else under
 * /api/auth/ that would let a key outgrow itself: it needs every scope its owner can have), or
 * null (identity and pre-authentication routes, and the dashboard's pages).
 */
export type Requirement = KeyScope | 'full' | null;

const OPEN_AUTH_ROUTES = new Set([
  '/api/auth/me',
  '/api/auth/status',
  '/api/auth/logout',
  '/api/auth/login',
  '/api/auth/register',
  '/api/auth/token-login',
]);

export function requirementOf(path: string, isApiPath: boolean): Requirement {
  if (path.startsWith('/api/auth/')) {
    if (path.startsWith('/api/auth/admin/')) return 'admin';
    if (path === '/api/auth/api-keys' || path.startsWith('/api/auth/api-keys/')) return 'keys';
    if (path === '/api/auth/usage' || path.startsWith('/api/auth/usage/')) return 'usage';
    if (path === '/api/auth/quota' || path.startsWith('/api/auth/quota/')) return 'usage';
    if (OPEN_AUTH_ROUTES.has(path)) return null;
    // SSO login and callback: the browser flow, never a key's business
    if (path.startsWith('/api/auth/github/') || path.startsWith('/api/auth/oidc/')) return null;
    return 'full';
  }
  if (path === '/v1/usage') return 'usage';
  if (path === '/metrics') return 'admin';
  return isApiPath ? 'inference' : null;
}

// ---- model allowlists ------------------------------------------------------------------------

/** Exact names and globs (`*` any run, `?` one character), case-sensitive like LocalAI's list. */
export interface ModelMatcher {
  readonly patterns: readonly string[];
  allows(model: string): boolean;
}

export function compileModelMatcher(patterns: readonly string[]): ModelMatcher {
  const exact = new Set<string>();
  const globs: RegExp[] = [];
  for (const pattern of patterns) {
    if (!/[*?]/.test(pattern)) {
      exact.add(pattern);
      continue;
    }
    const source = pattern
      .split('')
      .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
      .join('');
    globs.push(new RegExp(`^${source}$`, 's'));
  }
  return {
    patterns,
    allows: (model) => exact.has(model) || globs.some((glob) => glob.test(model)),
  };
}

// ---- IP allowlists ---------------------------------------------------------------------------

export interface IpMatcher {
  readonly patterns: readonly string[];
  allows(address: string): boolean;
}

interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** `10.1.0.0/16`, `2001:db8::/32`, or one address; null when it is neither. */
export function parseCidr(text: string): Cidr | null {
  const [address = '', prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return null;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** 400 naming the entry when an allowlist holds something that is not a CIDR. */
export function checkIpPatterns(patterns: readonly string[], field: string): string[] {
  return patterns.map((pattern, index) => {
    if (!parseCidr(pattern)) {
      throw new BadRequestError(`${field}[${index}]: "${pattern}" is not an IPv4 or IPv6 address or CIDR`);
    }
    return pattern.trim();
  });
}

/** An IPv4 client seen through an IPv6 socket (`::ffff:10.1.2.3`) is matched as IPv4. */
function normaliseAddress(address: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const plain = mapped?.[1] ?? address;
  const version = isIP(plain);
  if (version === 0) return null;
  return { address: plain, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export function compileIpMatcher(patterns: readonly string[]): IpMatcher {
  const list = new BlockList();
  for (const pattern of patterns) {
    const cidr = parseCidr(pattern);
    if (cidr) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return {
    patterns,
    allows(address) {
      const normal = normaliseAddress(address);
      return normal !== null && list.check(normal.address, normal.family);
    },
  };
}

/** True when every address of `inner` is inside `outer` (for "never more rights than the creator"). */
export function cidrWithin(inner: string, outer: IpMatcher): boolean {
  const cidr = parseCidr(inner);
  if (!cidr) return false;
  return outer.patterns.some((pattern) => {
    const candidate = parseCidr(pattern);
    if (!candidate || candidate.family !== cidr.family || candidate.prefix > cidr.prefix) return false;
    const single = new BlockList();
    single.addSubnet(candidate.address, candidate.prefix, candidate.family);
    return single.check(cidr.address, cidr.family);
  });
}

export function parseJsonList(text: string | null): string[] | null {
  if (text === null) return null;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === 'string') : null;
  } catch {
    return null;
  }
}
