import { z } from 'zod';
import { KeyAccessDto, KeyAccessFields, ModelAllowlist, PermissionMap } from './access.ts';

/**
 * Request and response bodies of /api/auth/* (reference sections 9.2, 9.3; decisions.md section 3).
 * Imported by the server (validation) and the dashboard (typed fetches). Times are RFC 3339 (UTC).
 */

export const Role = z.enum(['admin', 'user']);
export type Role = z.infer<typeof Role>;
export const UserStatus = z.enum(['active', 'pending', 'disabled']);
export type UserStatus = z.infer<typeof UserStatus>;
export const RegistrationMode = z.enum(['open', 'approval', 'invite']);

// ---- requests -------------------------------------------------------------------------------

export const RegisterRequest = z.object({
  email: z.string(),
  password: z.string(),
  name: z.string().max(255).optional(),
  inviteCode: z.string().optional(),
  acknowledge_weak_password: z.boolean().optional(),
});
export type RegisterRequest = z.infer<typeof RegisterRequest>;

export const LoginRequest = z.object({ email: z.string(), password: z.string() });
export type LoginRequest = z.infer<typeof LoginRequest>;

export const TokenLoginRequest = z.object({ token: z.string() });
export type TokenLoginRequest = z.infer<typeof TokenLoginRequest>;

export const ProfileRequest = z.object({
  name: z.string().trim().min(1).max(255).optional(),
  /** '' clears it; otherwise an http(s) URL (it ends up in an <img src>). */
  avatar_url: z
    .string()
    .max(512)
    .refine(
      (value) => value === '' || /^https?:\/\/[^\s]+$/i.test(value),
      'must be an http:// or https:// URL',
    )
    .optional(),
});
export type ProfileRequest = z.infer<typeof ProfileRequest>;

export const PasswordChangeRequest = z.object({
  current_password: z.string(),
  new_password: z.string(),
  acknowledge_weak_password: z.boolean().optional(),
});
export type PasswordChangeRequest = z.infer<typeof PasswordChangeRequest>;

export const CreateApiKeyRequest = z
  .object({
    // Trimmed: a blank name would be an unrecognisable row in the usage breakdown.
    name: z.string().trim().min(1, 'is required').max(255),
    /** `90d`, `1y`, `24h`, … */
    expiresIn: z.string().optional(),
    /** RFC 3339; wins over expiresIn; a past date is accepted (reference section 9.2). */
    expiresAt: z.string().optional(),
  })
  .extend(KeyAccessFields.shape);
export type CreateApiKeyRequest = z.infer<typeof CreateApiKeyRequest>;

export const SetRoleRequest = z.object({ role: Role });
export type SetRoleRequest = z.infer<typeof SetRoleRequest>;

export const SetStatusRequest = z.object({ status: UserStatus });
export type SetStatusRequest = z.infer<typeof SetStatusRequest>;

export const AdminPasswordRequest = z.object({
  password: z.string(),
  acknowledge_weak_password: z.boolean().optional(),
});
export type AdminPasswordRequest = z.infer<typeof AdminPasswordRequest>;

export const CreateInviteRequest = z.object({
  expiresInHours: z.number().int().min(1).max(8760).optional(),
});
export type CreateInviteRequest = z.infer<typeof CreateInviteRequest>;

export const AdminApiKeysQuery = z.object({ user_id: z.string().optional() });
export type AdminApiKeysQuery = z.infer<typeof AdminApiKeysQuery>;

// ---- responses ------------------------------------------------------------------------------

/** POST /api/auth/sso/link: the password of the local account the pending sign-in names. */
export const LinkIdentityRequest = z.object({ password: z.string() });
export type LinkIdentityRequest = z.infer<typeof LinkIdentityRequest>;

export const MessageResponse = z.object({ message: z.string() });
export type MessageResponse = z.infer<typeof MessageResponse>;

/** The flat error shape of /api/auth/* (RequireAdmin's 401/403 use the nested OpenAI one). */
export const AuthErrorResponse = z.object({
  error: z.string(),
  error_code: z.string().optional(),
  overridable: z.boolean().optional(),
});
export type AuthErrorResponse = z.infer<typeof AuthErrorResponse>;

export const UserSummary = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  avatarUrl: z.string(),
  role: Role,
  provider: z.string(),
  status: UserStatus,
});
export type UserSummary = z.infer<typeof UserSummary>;

/** register (201), login, token-login. */
export const UserResponse = z.object({ user: UserSummary });
export type UserResponse = z.infer<typeof UserResponse>;

/** Approval mode without an invite: the account waits for an admin. */
export const PendingRegistrationResponse = z.object({ message: z.string(), pending: z.literal(true) });
export type PendingRegistrationResponse = z.infer<typeof PendingRegistrationResponse>;

export const MeResponse = UserSummary.extend({
  /** The effective feature map (reference section 2.7): all 29 keys, all true for admins. */
  permissions: PermissionMap,
  /** How this request was authenticated. */
  source: z.enum(['apikey', 'web', 'legacy']),
});
export type MeResponse = z.infer<typeof MeResponse>;

/** A single sign-on provider that is ready for logins (its button on the login page). */
export const SsoProviderDto = z.object({
  id: z.enum(['github', 'oidc']),
  label: z.string(),
  /** Starts the login; `?invite_code=` may be appended. */
  loginUrl: z.string(),
});
export type SsoProviderDto = z.infer<typeof SsoProviderDto>;

export const StatusResponse = z.object({
  authEnabled: z.boolean(),
  staticApiKeyRequired: z.boolean(),
  /** `local` (unless local auth is disabled), then the single sign-on providers that are ready. */
  providers: z.array(z.string()),
  /** keytally's addition: button labels and login URLs of the ready single sign-on providers. */
  sso: z.array(SsoProviderDto),
  /** False before the first account exists: the dashboard then offers to create the admin. */
  hasUsers: z.boolean(),
  registrationMode: z.string(),
  user: MeResponse.nullable(),
});
export type StatusResponse = z.infer<typeof StatusResponse>;

/** GET /api/auth/sso/link: the sign-in waiting to be linked to a local account (this browser's). */
export const PendingLinkResponse = z.object({
  provider: z.enum(['github', 'oidc']),
  label: z.string(),
  email: z.string(),
  name: z.string(),
});
export type PendingLinkResponse = z.infer<typeof PendingLinkResponse>;

/** GET /api/auth/identities: the single sign-on identities that sign the caller in. */
export const IdentityDto = z.object({
  id: z.string(),
  provider: z.string(),
  label: z.string(),
  email: z.string(),
  createdAt: z.string(),
  lastLoginAt: z.string(),
});
export type IdentityDto = z.infer<typeof IdentityDto>;
export const IdentityListResponse = z.object({ identities: z.array(IdentityDto) });
export type IdentityListResponse = z.infer<typeof IdentityListResponse>;

export const ApiKeyDto = z
  .object({
    id: z.string(),
    name: z.string(),
    keyPrefix: z.string(),
    role: z.string(),
    createdAt: z.string(),
    lastUsed: z.string().nullable(),
    /** Present only when the key expires. */
    expiresAt: z.string().optional(),
    expired: z.boolean(),
    /** Tombstones are listed too (decisions.md section 3): the UI shows them with a badge. */
    revoked: z.boolean(),
    revokedAt: z.string().nullable(),
  })
  .extend(KeyAccessDto.shape);
export type ApiKeyDto = z.infer<typeof ApiKeyDto>;

export const ApiKeyListResponse = z.object({ keys: z.array(ApiKeyDto) });
export type ApiKeyListResponse = z.infer<typeof ApiKeyListResponse>;

export const AdminApiKeyDto = ApiKeyDto.extend({ userId: z.string(), userName: z.string() });
export type AdminApiKeyDto = z.infer<typeof AdminApiKeyDto>;

export const AdminApiKeyListResponse = z.object({ keys: z.array(AdminApiKeyDto) });
export type AdminApiKeyListResponse = z.infer<typeof AdminApiKeyListResponse>;

/** 201 of POST /api/auth/api-keys: the only time the plaintext key is shown. */
export const CreatedApiKeyResponse = z
  .object({
    key: z.string(),
    id: z.string(),
    name: z.string(),
    keyPrefix: z.string(),
    role: z.string(),
    createdAt: z.string(),
    expiresAt: z.string().optional(),
  })
  .extend(KeyAccessDto.shape);
export type CreatedApiKeyResponse = z.infer<typeof CreatedApiKeyResponse>;

export const AdminUserDto = UserSummary.extend({
  createdAt: z.string(),
  updatedAt: z.string(),
  /** The effective feature map and the model allowlist (reference section 2.6). */
  permissions: PermissionMap,
  allowed_models: ModelAllowlist,
});
export type AdminUserDto = z.infer<typeof AdminUserDto>;

export const AdminUserListResponse = z.object({ users: z.array(AdminUserDto) });
export type AdminUserListResponse = z.infer<typeof AdminUserListResponse>;

export const InviteDto = z.object({
  id: z.string(),
  codePrefix: z.string(),
  createdBy: z.string(),
  usedBy: z.string().nullable(),
  usedAt: z.string().nullable(),
  createdAt: z.string(),
  expiresAt: z.string(),
});
export type InviteDto = z.infer<typeof InviteDto>;

export const InviteListResponse = z.object({ invites: z.array(InviteDto) });
export type InviteListResponse = z.infer<typeof InviteListResponse>;

/** 201 of POST /api/auth/admin/invites: the only time the code is shown. */
export const CreatedInviteResponse = InviteDto.extend({ code: z.string() });
export type CreatedInviteResponse = z.infer<typeof CreatedInviteResponse>;
