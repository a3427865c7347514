import type { SourcesView, UsageRange } from '../api.ts';

/** Query keys in one place so mutations invalidate exactly what they change. */
export const queryKeys = {
  status: ['auth', 'status'] as const,
  apiKeys: ['auth', 'api-keys'] as const,
  adminUsers: ['admin', 'users'] as const,
  adminKeys: (userId: string) => ['admin', 'api-keys', userId] as const,
  invites: ['admin', 'invites'] as const,
  features: ['admin', 'features'] as const,
  userPermissions: (userId: string) => ['admin', 'permissions', userId] as const,
  identities: ['auth', 'identities'] as const,
  pendingLink: ['auth', 'sso-link'] as const,
  usageAll: ['usage'] as const,
  usage: (range: UsageRange) => ['usage', 'self', range] as const,
  adminUsage: (range: UsageRange, userId?: string) => ['usage', 'admin', range, userId ?? ''] as const,
  sources: (range: UsageRange, admin: boolean, userId?: string, view?: SourcesView) =>
    ['usage', 'sources', admin ? 'admin' : 'self', range, userId ?? '', view ?? null] as const,
  historySpan: (admin: boolean) => ['usage', 'history-span', admin ? 'admin' : 'self'] as const,
  models: ['models'] as const,
};

/**
 * Usage views poll while visible: new usage reaches the database within one flush (1 s by default),
 * and the rollup queries behind these views cost milliseconds, so 5 s keeps pages current cheaply.
 */
export const USAGE_REFRESH_MS = 5_000;
