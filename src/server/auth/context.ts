/** What the auth hook attaches to every request (reference section 5). */

import type { IpMatcher, KeyScopes, ModelMatcher } from './access.ts';
import type { UserAccess } from './permissions.ts';

export type AuthSource = 'apikey' | 'web' | 'legacy';
export type Role = 'admin' | 'user';
export type UserStatus = 'active' | 'pending' | 'disabled';

export const LEGACY_USER_ID = 'legacy-api-key';
export const LEGACY_USER_NAME = 'API Key User';

export interface AuthUser {
  id: string;
  email: string;
  name: string;
  avatarUrl: string;
  provider: string;
  role: Role;
  status: UserStatus;
}

export interface AuthApiKey {
  id: string;
  name: string;
  prefix: string;
}

/** A key's own limits on top of its owner's (issue 14), compiled once per cache entry. */
export interface KeyRights {
  scopes: KeyScopes;
  /** Per-key model allowlist; null: every model the owner may use. */
  models: ModelMatcher | null;
  /** Per-key IP allowlist; null: any address. */
  ips: IpMatcher | null;
  expiresAt: number | null;
}

export interface AuthContext {
  user: AuthUser;
  /** The owner's current role (never the role copied onto the key). */
  role: Role;
  source: AuthSource;
  /** Set for source 'apikey' only. */
  apiKey?: AuthApiKey;
  /** Set for source 'apikey' only. */
  keyRights?: KeyRights;
  /** The owner's LocalAI permissions (feature map, model allowlist). */
  access: UserAccess;
  /** The session id (hash) when a session cookie or Bearer session authenticated the request. */
  sessionId?: string;
  /** True when the session came from the `session` cookie (eligible for rotation, CSRF-checked). */
  viaCookie?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext | null;
  }
}
