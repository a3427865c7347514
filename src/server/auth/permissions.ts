import {
  FEATURE_GROUPS,
  FEATURE_KEYS,
  type FeatureGroup,
  GROUP_DEFAULTS,
  type ModelAllowlist,
  type PermissionMap,
} from '../../shared/access.ts';
import { compileModelMatcher, type ModelMatcher } from './access.ts';
import type { Role } from './context.ts';

/**
 * LocalAI's per-user permissions (localai-reference-control.md section 2): the feature map with
 * per-group defaults and the model allowlist, resolved once per credential-cache entry.
 */

const DEFAULT_OF = new Map<string, boolean>();
for (const [group, features] of Object.entries(FEATURE_GROUPS) as [
  FeatureGroup,
  readonly (readonly [string, string])[],
][]) {
  for (const [key] of features) DEFAULT_OF.set(key, GROUP_DEFAULTS[group]);
}

/** What the cache keeps per user: null features means an admin (every feature, never stored). */
export interface UserAccess {
  features: Readonly<Record<string, boolean>> | null;
  /** The allowlist when enabled; null allows every model. */
  models: ModelMatcher | null;
}

export const FULL_ACCESS: UserAccess = { features: null, models: null };

/** The 29-key effective map: stored value, else the group default; all true for admins. */
export function effectivePermissions(role: Role, stored: PermissionMap): PermissionMap {
  const map: PermissionMap = {};
  for (const key of FEATURE_KEYS)
    map[key] = role === 'admin' ? true : (stored[key] ?? DEFAULT_OF.get(key) ?? false);
  return map;
}

export function effectiveOf(access: UserAccess): PermissionMap {
  if (access.features === null) return effectivePermissions('admin', {});
  return { ...access.features };
}

export function userAccessOf(role: Role, stored: PermissionMap, allowlist: ModelAllowlist): UserAccess {
  if (role === 'admin') return FULL_ACCESS;
  return {
    features: effectivePermissions(role, stored),
    models: allowlist.enabled ? compileModelMatcher(allowlist.models ?? []) : null,
  };
}

/** Unknown keys are refused (reference fix list 2): a typo must not silently grant nothing. */
export function unknownFeatureKeys(map: PermissionMap): string[] {
  return Object.keys(map).filter((key) => !DEFAULT_OF.has(key));
}

/**
 * The feature a route needs, for the routes keytally serves (reference 2.3's registry, narrowed to
 * them, plus the Ollama routes the fix list says to gate). Anything else needs no feature.
 */
const FEATURE_OF_PATH = new Map<string, string>([
  ['/v1/chat/completions', 'chat'],
  ['/chat/completions', 'chat'],
  ['/v1/completions', 'chat'],
  ['/completions', 'chat'],
  ['/v1/responses', 'chat'],
  ['/responses', 'chat'],
  ['/v1/messages', 'chat'],
  ['/messages', 'chat'],
  ['/api/chat', 'chat'],
  ['/api/generate', 'chat'],
  ['/v1/embeddings', 'embeddings'],
  ['/embeddings', 'embeddings'],
  ['/api/embed', 'embeddings'],
  ['/api/embeddings', 'embeddings'],
]);

export function featureOfPath(path: string): string | undefined {
  return FEATURE_OF_PATH.get(path);
}

export function featureCatalogue(): Record<FeatureGroup, { key: string; label: string; default: boolean }[]> {
  const groups = {} as Record<FeatureGroup, { key: string; label: string; default: boolean }[]>;
  for (const [group, features] of Object.entries(FEATURE_GROUPS) as [
    FeatureGroup,
    readonly (readonly [string, string])[],
  ][]) {
    groups[group] = features.map(([key, label]) => ({ key, label, default: GROUP_DEFAULTS[group] }));
  }
  return groups;
}
