import type { UserRow } from '../db/schema.ts';
import type { AuthUser } from './context.ts';

export function toAuthUser(row: UserRow): AuthUser {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    avatarUrl: row.avatar_url,
    provider: row.provider,
    role: row.role,
    status: row.status,
  };
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}
