import { z } from 'zod';

/**
 * Access control shapes (issue 14): key scopes, per-key allowlists, rotation, disable, and LocalAI's
 * per-user permissions (localai-reference-control.md section 2). Imported by server and dashboard.
 */

/** What a key may do; `all` marks keys created before scopes existed (full rights, as in LocalAI). */
export const KEY_SCOPES = ['inference', 'usage', 'keys', 'admin'] as const;
export const KeyScope = z.enum(KEY_SCOPES);
export type KeyScope = z.infer<typeof KeyScope>;
export const StoredScope = z.enum(['all', ...KEY_SCOPES]);
export type StoredScope = z.infer<typeof StoredScope>;
/** What a new key gets unless its creator asks for more (decisions.md section 9). */
export const DEFAULT_KEY_SCOPES: readonly KeyScope[] = ['inference', 'usage'];

export const SCOPE_LABELS: Record<StoredScope, string> = {
  all: 'All (key from before scopes)',
  inference: 'Inference (/v1 model routes)',
  usage: 'Usage (read its own usage)',
  keys: "Keys (manage its owner's keys)",
  admin: 'Admin (admin routes)',
};

// 100 entries of 255 characters bound what every request's check may have to look at.
const ListEntry = z.string().trim().min(1, 'must not be empty').max(255);
export const ModelPatterns = z.array(ListEntry).max(100);
/** CIDRs or single addresses, IPv4 or IPv6; the server checks their syntax. */
export const IpPatterns = z.array(ListEntry).max(100);

export const KeyAccessFields = z.object({
  /** Defaults to inference + usage; never more than the creator has. */
  scopes: z.array(KeyScope).min(1, 'must name at least one scope').max(4).optional(),
  /** Model names and globs (`gpt-4o*`); absent or null: every model the owner may use. */
  allowedModels: ModelPatterns.nullable().optional(),
  /** CIDRs (`10.1.0.0/16`, `2001:db8::/32`); absent or null: any address. */
  allowedIps: IpPatterns.nullable().optional(),
});
export type KeyAccessFields = z.infer<typeof KeyAccessFields>;

/** PATCH /api/auth/api-keys/:id (and its admin twin). */
export const UpdateApiKeyRequest = KeyAccessFields.extend({ disabled: z.boolean().optional() }).refine(
  (body) => Object.values(body).some((value) => value !== undefined),
  'name at least one of disabled, scopes, allowedModels, allowedIps',
);
export type UpdateApiKeyRequest = z.infer<typeof UpdateApiKeyRequest>;

/** POST /api/auth/api-keys/:id/rotate: `grace` in seconds or a duration (`24h`); 0 ends the old secret at once. */
export const RotateApiKeyRequest = z.object({
  grace: z
    .union([
      z
        .number()
        .int()
        .min(0)
        .max(30 * 86_400),
      z.string().trim().max(16),
    ])
    .optional(),
});
export type RotateApiKeyRequest = z.infer<typeof RotateApiKeyRequest>;
export const DEFAULT_ROTATION_GRACE_MS = 24 * 3_600_000;
export const MAX_ROTATION_GRACE_MS = 30 * 86_400_000;

/** The access part of every key DTO. */
export const KeyAccessDto = z.object({
  scopes: z.array(StoredScope),
  allowedModels: z.array(z.string()).nullable(),
  allowedIps: z.array(z.string()).nullable(),
  disabled: z.boolean(),
  disabledAt: z.string().nullable(),
  /** Set while a rotated-away secret still authenticates: until when. */
  previousKeyValidUntil: z.string().nullable(),
});
export type KeyAccessDto = z.infer<typeof KeyAccessDto>;

// ---- LocalAI permissions (reference section 2) ----------------------------------------------

export const FEATURE_GROUPS = {
  agent_features: [
    ['agents', 'Agents'],
    ['skills', 'Skills'],
    ['collections', 'Collections'],
    ['mcp_jobs', 'MCP CI Jobs'],
    ['localai_assistant', 'LocalAI Assistant'],
  ],
  general_features: [
    ['fine_tuning', 'Fine-Tuning'],
    ['quantization', 'Quantization'],
  ],
  api_features: [
    ['chat', 'Chat Completions'],
    ['images', 'Image Generation'],
    ['audio_speech', 'Audio Speech / TTS'],
    ['audio_transcription', 'Audio Transcription'],
    ['audio_diarization', 'Audio Diarization'],
    ['audio_classification', 'Audio Classification'],
    ['vad', 'Voice Activity Detection'],
    ['detection', 'Detection'],
    ['video', 'Video Generation'],
    ['3d', '3D Generation'],
    ['embeddings', 'Embeddings'],
    ['sound', 'Sound Generation'],
    ['realtime', 'Realtime'],
    ['moderation', 'Moderation'],
    ['rerank', 'Rerank'],
    ['tokenize', 'Tokenize'],
    ['mcp', 'MCP'],
    ['stores', 'Stores'],
    ['face_recognition', 'Face Recognition'],
    ['voice_recognition', 'Voice Recognition'],
    ['audio_transform', 'Audio Transform'],
    ['pii_filter', 'PII Analyze / Redact'],
  ],
} as const;
export type FeatureGroup = keyof typeof FEATURE_GROUPS;
/** A user's default per group: API features on, agent and general features off. */
export const GROUP_DEFAULTS: Record<FeatureGroup, boolean> = {
  agent_features: false,
  general_features: false,
  api_features: true,
};
/** All 29 keys in LocalAI's order (agent, general, api). */
export const FEATURE_KEYS: readonly string[] = Object.values(FEATURE_GROUPS).flatMap((group) =>
  group.map(([key]) => key),
);
/** The features keytally serves routes for; the others are stored for compatibility and gate nothing. */
export const SERVED_FEATURES = ['chat', 'embeddings'] as const;

export const PermissionMap = z.record(z.string(), z.boolean());
export type PermissionMap = z.infer<typeof PermissionMap>;

export const ModelAllowlist = z.object({
  enabled: z.boolean(),
  models: z.array(z.string().trim().min(1).max(255)).max(1000).optional(),
});
export type ModelAllowlist = z.infer<typeof ModelAllowlist>;

export const FeatureInfo = z.object({ key: z.string(), label: z.string(), default: z.boolean() });
export type FeatureInfo = z.infer<typeof FeatureInfo>;

export const FeaturesResponse = z.object({
  agent_features: z.array(FeatureInfo),
  general_features: z.array(FeatureInfo),
  api_features: z.array(FeatureInfo),
  models: z.array(z.string()),
});
export type FeaturesResponse = z.infer<typeof FeaturesResponse>;

export const UserPermissionsResponse = z.object({ user_id: z.string(), permissions: PermissionMap });
export type UserPermissionsResponse = z.infer<typeof UserPermissionsResponse>;
