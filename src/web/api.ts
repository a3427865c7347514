/**
 * Typed client for keytally's HTTP API. Types mirror the reference shapes (§9) plus keytally's
 * additions (`by_key[].key_prefix`, `by_key[].revoked`). Every call is same-origin with the session
 * cookie; non-2xx answers throw an ApiError carrying the server's message from either envelope.
 */

import type {
  FeaturesResponse,
  KeyAccessFields,
  ModelAllowlist,
  PermissionMap,
  UpdateApiKeyRequest,
  UserPermissionsResponse,
} from '../shared/access.ts';
import type {
  AdminApiKeyDto,
  AdminUserDto,
  ApiKeyDto,
  CreatedApiKeyResponse,
  CreatedInviteResponse,
  IdentityListResponse,
  InviteDto,
  MeResponse,
  PendingLinkResponse,
  Role,
  StatusResponse,
  UserSummary,
} from '../shared/auth.ts';
import type { SourcesResponse, UsageResponse } from '../shared/usage.ts';

export type {
  KeyTotal,
  SourcesResponse,
  TotalsEntry,
  UsageBucket,
  UsageResponse,
  UsageTotals,
  UserSourceTotal,
} from '../shared/usage.ts';
export type { FeaturesResponse, KeyAccessFields, ModelAllowlist, PermissionMap, Role, UpdateApiKeyRequest };

/** The body of POST /api/auth/api-keys as the dashboard sends it. */
export type NewKeyBody = KeyAccessFields & { name: string; expiresIn?: string };

export type SessionUser = UserSummary;
export type AuthStatus = StatusResponse;
export type ApiKey = ApiKeyDto | AdminApiKeyDto;
export type CreatedApiKey = CreatedApiKeyResponse;
export type AdminUser = AdminUserDto;
export type Invite = InviteDto;

export interface ModelList {
  data: { id: string; owned_by?: string }[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function messageOf(body: unknown, status: number): string {
  if (body && typeof body === 'object' && 'error' in body) {
    const error = (body as { error: unknown }).error;
    if (typeof error === 'string') return error;
    if (error && typeof error === 'object' && 'message' in error) {
      const message = (error as { message: unknown }).message;
      if (typeof message === 'string') return message;
    }
  }
  if (body && typeof body === 'object' && 'message' in body) {
    const message = (body as { message: unknown }).message;
    if (typeof message === 'string') return message;
  }
  return `request failed (HTTP ${status})`;
}

export async function request<T>(method: string, url: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { ...init.headers, 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) throw new ApiError(response.status, messageOf(parsed, response.status), parsed);
  return parsed as T;
}

export const get = <T>(url: string) => request<T>('GET', url);

/** The period or custom range the usage views ask for. */
export interface UsageRange {
  period: 'day' | 'week' | 'month' | 'all';
  from?: string;
  to?: string;
  /** `all` with a short history is drawn in days rather than one or two month bars. */
  granularity?: 'day';
}

export function rangeQuery(range: UsageRange, extra: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  if (range.from && range.to) {
    params.set('from', range.from);
    params.set('to', range.to);
  } else {
    params.set('period', range.period);
  }
  if (range.granularity) params.set('granularity', range.granularity);
  for (const [key, value] of Object.entries(extra)) if (value) params.set(key, value);
  return params.toString();
}

/** What the Sources tab asks the sources endpoints for (shared/usage.ts SourcesViewQuery). */
export interface SourcesView {
  top: number;
  keep?: string;
}

function viewParams(view: SourcesView | undefined): Record<string, string | undefined> {
  if (!view) return {};
  return { top: String(view.top), keep: view.keep, compare: 'previous' };
}

export interface RegisterBody {
  email: string;
  password: string;
  name: string;
  inviteCode?: string;
  acknowledge_weak_password?: boolean;
}

export interface RegisterResult {
  user?: SessionUser;
  message?: string;
  pending?: boolean;
}

export const api = {
  status: () => get<AuthStatus>('/api/auth/status'),
  login: (email: string, password: string) =>
    request<{ user: SessionUser }>('POST', '/api/auth/login', { email, password }),
  register: (body: RegisterBody) => request<RegisterResult>('POST', '/api/auth/register', body),
  tokenLogin: (token: string) => request<{ user: SessionUser }>('POST', '/api/auth/token-login', { token }),
  logout: () => request<unknown>('POST', '/api/auth/logout'),
  /** The single sign-on identity waiting (in this browser) to be linked to a local account. */
  pendingLink: () => get<PendingLinkResponse>('/api/auth/sso/link'),
  linkIdentity: (password: string) =>
    request<{ user: SessionUser }>('POST', '/api/auth/sso/link', { password }),
  cancelLink: () => request<unknown>('DELETE', '/api/auth/sso/link'),
  identities: () => get<IdentityListResponse>('/api/auth/identities'),
  me: () => get<MeResponse>('/api/auth/me'),
  updateProfile: (name: string) => request<unknown>('PUT', '/api/auth/profile', { name }),
  changePassword: (current_password: string, new_password: string, acknowledge_weak_password: boolean) =>
    request<unknown>('PUT', '/api/auth/password', {
      current_password,
      new_password,
      acknowledge_weak_password,
    }),
  listKeys: () => get<{ keys: ApiKey[] }>('/api/auth/api-keys'),
  createKey: (body: NewKeyBody) => request<CreatedApiKey>('POST', '/api/auth/api-keys', body),
  revokeKey: (id: string) => request<unknown>('DELETE', `/api/auth/api-keys/${encodeURIComponent(id)}`),
  updateKey: (id: string, body: UpdateApiKeyRequest) =>
    request<{ key: ApiKey }>('PATCH', `/api/auth/api-keys/${encodeURIComponent(id)}`, body),
  rotateKey: (id: string, grace: string) =>
    request<CreatedApiKey>('POST', `/api/auth/api-keys/${encodeURIComponent(id)}/rotate`, { grace }),
  adminUpdateKey: (id: string, body: UpdateApiKeyRequest) =>
    request<{ key: ApiKey }>('PATCH', `/api/auth/admin/api-keys/${encodeURIComponent(id)}`, body),
  features: () => get<FeaturesResponse>('/api/auth/admin/features'),
  userPermissions: (id: string) =>
    get<UserPermissionsResponse>(`/api/auth/admin/users/${encodeURIComponent(id)}/permissions`),
  setUserPermissions: (id: string, permissions: PermissionMap) =>
    request<unknown>('PUT', `/api/auth/admin/users/${encodeURIComponent(id)}/permissions`, permissions),
  setUserModels: (id: string, allowlist: ModelAllowlist) =>
    request<unknown>('PUT', `/api/auth/admin/users/${encodeURIComponent(id)}/models`, allowlist),
  adminUsers: () => get<{ users: AdminUser[] }>('/api/auth/admin/users'),
  setRole: (id: string, role: Role) =>
    request<unknown>('PUT', `/api/auth/admin/users/${encodeURIComponent(id)}/role`, { role }),
  setStatus: (id: string, status: AdminUser['status']) =>
    request<unknown>('PUT', `/api/auth/admin/users/${encodeURIComponent(id)}/status`, { status }),
  resetPassword: (id: string, password: string) =>
    request<unknown>('PUT', `/api/auth/admin/users/${encodeURIComponent(id)}/password`, {
      password,
      acknowledge_weak_password: true,
    }),
  deleteUser: (id: string) => request<unknown>('DELETE', `/api/auth/admin/users/${encodeURIComponent(id)}`),
  adminKeys: (userId: string) =>
    get<{ keys: AdminApiKeyDto[] }>(`/api/auth/admin/api-keys?user_id=${encodeURIComponent(userId)}`),
  adminRevokeKey: (id: string) =>
    request<unknown>('DELETE', `/api/auth/admin/api-keys/${encodeURIComponent(id)}`),
  invites: () => get<{ invites: Invite[] }>('/api/auth/admin/invites'),
  createInvite: (expiresInHours: number) =>
    request<CreatedInviteResponse>('POST', '/api/auth/admin/invites', { expiresInHours }),
  deleteInvite: (id: string) =>
    request<unknown>('DELETE', `/api/auth/admin/invites/${encodeURIComponent(id)}`),
  // `compare=previous`: the cards' change against the period before (shared/usage.ts).
  usage: (range: UsageRange) =>
    get<UsageResponse>(`/api/auth/usage?${rangeQuery(range, { compare: 'previous' })}`),
  adminUsage: (range: UsageRange, userId?: string) =>
    get<UsageResponse>(
      `/api/auth/admin/usage?${rangeQuery(range, { user_id: userId, compare: 'previous' })}`,
    ),
  // `top`/`keep`: the Sources tab downloads the series it draws, not every key's buckets.
  sources: (range: UsageRange, view?: SourcesView) =>
    get<SourcesResponse>(`/api/auth/usage/sources?${rangeQuery(range, viewParams(view))}`),
  adminSources: (range: UsageRange, userId: string | undefined, view?: SourcesView) =>
    get<SourcesResponse>(
      `/api/auth/admin/usage/sources?${rangeQuery(range, { user_id: userId, ...viewParams(view) })}`,
    ),
  models: () => get<ModelList>('/v1/models'),
};
