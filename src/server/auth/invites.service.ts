import { randomUUID } from 'node:crypto';
import type { CreatedInviteResponse, InviteDto } from '../../shared/auth.ts';
import type { InviteRow } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import { toInviteDto } from './dto.ts';
import { hashSecret, randomHex } from './hash.ts';
import { deleteUnusedInvite, insertInvite, listInvites } from './invites.repository.ts';

export const DEFAULT_INVITE_HOURS = 168;

/** 32 random bytes as hex, shown once; its HMAC and first 8 characters are stored. */
export async function createInvite(
  rt: AuthRuntime,
  createdBy: string,
  expiresInHours = DEFAULT_INVITE_HOURS,
): Promise<CreatedInviteResponse> {
  const now = rt.now();
  const code = randomHex(32);
  const row: InviteRow = {
    id: randomUUID(),
    code_hash: hashSecret(rt.hmacSecret, code),
    code_prefix: code.slice(0, 8),
    created_by: createdBy,
    used_by: null,
    used_at: null,
    created_at: now,
    expires_at: now + expiresInHours * 3_600_000,
  };
  await insertInvite(rt.db, row);
  return { ...toInviteDto(row), code };
}

export async function listAllInvites(rt: AuthRuntime): Promise<InviteDto[]> {
  return (await listInvites(rt.db)).map(toInviteDto);
}

export async function deleteInvite(rt: AuthRuntime, id: string): Promise<void> {
  if (!(await deleteUnusedInvite(rt.db, id))) throw new NotFoundError('invite not found or already used');
}
