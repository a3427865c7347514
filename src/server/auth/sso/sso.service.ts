import { randomUUID } from 'node:crypto';
import type { UserIdentityRow, UserRow, UserUpdate } from '../../db/schema.ts';
import { ConflictError } from '../../errors.ts';
import { isAdminEmail, isUniqueViolation } from '../accounts.service.ts';
import type { AuthRuntime } from '../auth-runtime.ts';
import { hashSecret } from '../hash.ts';
import { consumeInvite, findInviteByHash } from '../invites.repository.ts';
import { findLocalUserByEmail, updateUser } from '../users.repository.ts';
import {
  countAdmins,
  findIdentity,
  insertIdentity,
  insertUserWithIdentity,
  updateIdentity,
} from './identities.repository.ts';
import type { SsoErrorCode, SsoIdentity } from './provider.ts';

/**
 * The identity rules of single sign-on (decisions.md section 10; reference section 3.3 with the
 * fixes of section 6 item 3):
 * - accounts are found by (provider, issuer, subject), never by email;
 * - only a verified email counts: for the admin role, for registration gating and for linking;
 * - a new identity whose verified email belongs to a local account is not signed in: the owner
 *   links it by entering that account's password (never a silent take-over);
 * - invites are honoured in approval mode too (as local registration does);
 * - pending and disabled accounts are refused with a reason the login page shows;
 * - a name or avatar the user edited is kept; the provider's values replace only its own.
 */

export type SsoOutcome =
  | { kind: 'signed-in'; user: UserRow }
  /** A local account has this verified email: its owner has to confirm with its password. */
  | { kind: 'link'; identity: SsoIdentity }
  | { kind: 'refused'; code: SsoErrorCode };

export async function signInWithIdentity(
  rt: AuthRuntime,
  identity: SsoIdentity,
  inviteCode: string | undefined,
): Promise<SsoOutcome> {
  const found = await findIdentity(rt.db, identity);
  if (found) return signInExisting(rt, found.identity, found.user, identity);

  const verifiedEmail = identity.emailVerified ? identity.email : '';
  if (verifiedEmail !== '' && (await findLocalUserByEmail(rt.db, verifiedEmail))) {
    return { kind: 'link', identity };
  }
  // The bootstrap admin is the first account with a verified email while no admin exists: an
  // unverified first arrival neither becomes admin nor uses the bootstrap up.
  const privileged =
    verifiedEmail !== '' && (isAdminEmail(rt, verifiedEmail) || (await countAdmins(rt.db)) === 0);
  const mode = rt.config.registrationMode;
  const code = inviteCode?.trim() ?? '';
  let invite: { id: string } | undefined;
  if (code !== '' && !privileged) {
    const row = await findInviteByHash(rt.db, hashSecret(rt.hmacSecret, code));
    if (!row || row.used_at !== null || row.expires_at <= rt.now())
      return { kind: 'refused', code: 'invalid_invite' };
    invite = row;
  } else if (mode === 'invite' && !privileged) {
    return { kind: 'refused', code: 'invite_required' };
  }

  const now = rt.now();
  const identityRow: UserIdentityRow = {
    id: randomUUID(),
    user_id: randomUUID(),
    provider: identity.provider,
    issuer: identity.issuer,
    subject: identity.subject,
    email: verifiedEmail,
    name: identity.name,
    avatar_url: identity.avatarUrl,
    created_at: now,
    last_login_at: now,
  };
  const user: UserRow = {
    id: identityRow.user_id,
    // Only a verified email is kept: an unverified one could match an admin email or another
    // account later, and nothing may rely on it.
    email: verifiedEmail,
    name: identity.name,
    avatar_url: identity.avatarUrl,
    provider: identity.provider,
    subject: identityRow.id,
    password_hash: null,
    role: privileged ? 'admin' : 'user',
    status: privileged || mode === 'open' || invite ? 'active' : 'pending',
    created_at: now,
    updated_at: now,
  };
  try {
    await insertUserWithIdentity(rt.db, user, identityRow);
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // The same identity's first login completed a moment earlier (two tabs, a double click).
    const winner = await findIdentity(rt.db, identity);
    if (!winner) throw error;
    return signInExisting(rt, winner.identity, winner.user, identity);
  }
  if (invite && !(await consumeInvite(rt.db, invite.id, user.id, now))) {
    // Someone used the same code a moment earlier: this account waits for approval instead.
    await updateUser(rt.db, user.id, { status: 'pending', updated_at: now });
    return { kind: 'refused', code: 'pending_approval' };
  }
  if (user.status === 'pending') return { kind: 'refused', code: 'pending_approval' };
  return { kind: 'signed-in', user };
}

async function signInExisting(
  rt: AuthRuntime,
  stored: UserIdentityRow,
  user: UserRow,
  identity: SsoIdentity,
): Promise<SsoOutcome> {
  const now = rt.now();
  const verifiedEmail = identity.emailVerified ? identity.email : '';
  const changes: UserUpdate = {};
  // The provider's values replace only what it set before; what the user edited stays.
  if (user.name === stored.name && identity.name !== '' && identity.name !== user.name)
    changes.name = identity.name;
  if (user.avatar_url === stored.avatar_url && identity.avatarUrl !== user.avatar_url) {
    changes.avatar_url = identity.avatarUrl;
  }
  // An account created by this provider follows its verified email; a linked local account keeps
  // its own (it is the local sign-in name).
  if (user.provider === identity.provider && verifiedEmail !== '' && verifiedEmail !== user.email) {
    changes.email = verifiedEmail;
  }
  // MaybePromote: never demotes.
  if (user.role !== 'admin' && verifiedEmail !== '' && isAdminEmail(rt, verifiedEmail))
    changes.role = 'admin';
  if (Object.keys(changes).length > 0) {
    await updateUser(rt.db, user.id, { ...changes, updated_at: now });
    await rt.events.publish({ kind: 'user', id: user.id });
  }
  await updateIdentity(rt.db, stored.id, {
    email: verifiedEmail,
    name: identity.name,
    avatar_url: identity.avatarUrl,
    last_login_at: now,
  });
  if (user.status === 'pending') return { kind: 'refused', code: 'pending_approval' };
  if (user.status === 'disabled') return { kind: 'refused', code: 'account_disabled' };
  return { kind: 'signed-in', user: { ...user, ...changes } as UserRow };
}

/**
 * Links an identity to the local account its verified email names, after that account's password
 * was checked (the caller does that). Idempotent for the same account.
 */
export async function linkIdentityToUser(
  rt: AuthRuntime,
  user: UserRow,
  identity: SsoIdentity,
): Promise<void> {
  if (!identity.emailVerified || identity.email !== user.email) {
    throw new ConflictError('this sign-in does not belong to that account');
  }
  const existing = await findIdentity(rt.db, identity);
  if (existing) {
    if (existing.user.id === user.id) return;
    throw new ConflictError('this sign-in is already linked to another account');
  }
  const now = rt.now();
  try {
    await insertIdentity(rt.db, {
      id: randomUUID(),
      user_id: user.id,
      provider: identity.provider,
      issuer: identity.issuer,
      subject: identity.subject,
      email: identity.email,
      // The provider's values: the account's own name and avatar differ from them, so later logins
      // keep those as user edits.
      name: identity.name,
      avatar_url: identity.avatarUrl,
      created_at: now,
      last_login_at: now,
    });
  } catch (error) {
    if (isUniqueViolation(error))
      throw new ConflictError('this sign-in is already linked to another account');
    throw error;
  }
}
