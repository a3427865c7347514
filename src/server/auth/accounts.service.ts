import { randomUUID } from 'node:crypto';
import type { RegisterRequest } from '../../shared/auth.ts';
import type { UserRow } from '../db/schema.ts';
import { AppError, BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError } from '../errors.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import type { AuthUser, Role, UserStatus } from './context.ts';
import { hashSecret } from './hash.ts';
import { consumeInvite, findInviteByHash } from './invites.repository.ts';
import { hashPassword, verifyPassword } from './password.ts';
import { checkPasswordPolicy } from './password-policy.ts';
import { endAllSessions } from './sessions.service.ts';
import {
  countUsers,
  deleteUserCascade,
  findLocalUserByEmail,
  findUserById,
  insertUser,
  listUsers,
  updateUser,
} from './users.repository.ts';
import { normaliseEmail, toAuthUser } from './users.service.ts';

const EMAIL = /^[^\s@]+@[^\s@]+$/;
export const REGISTRATION_PROCESSED = 'registration processed';
export const INVALID_CREDENTIALS = 'invalid email or password';

export type RegistrationOutcome =
  | { kind: 'created'; user: AuthUser }
  | { kind: 'pending' }
  /** Duplicate email: answered exactly like a success without a session (no enumeration). */
  | { kind: 'processed' };

export function isAdminEmail(rt: AuthRuntime, email: string): boolean {
  return rt.config.adminEmail !== undefined && rt.config.adminEmail === normaliseEmail(email);
}

function checkEmail(email: string): string {
  const normalised = normaliseEmail(email);
  if (!EMAIL.test(normalised) || normalised.length > 255) throw new BadRequestError('invalid email address');
  return normalised;
}

/** True for a unique-constraint violation on either database (a concurrent duplicate register). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * An email that already has an account. In approval mode a new email would wait for approval, so the
 * duplicate answers as pending too: the same status and body, nothing to tell the two apart (reference
 * section 4's intent; a 201 here revealed which emails exist).
 */
function duplicateOutcome(rt: AuthRuntime, email: string): RegistrationOutcome {
  return rt.config.registrationMode === 'approval' && !isAdminEmail(rt, email)
    ? { kind: 'pending' }
    : { kind: 'processed' };
}

/**
 * POST /api/auth/register (reference section 4): first user admin and never gated, the admin email
 * admin and never gated; `approval` and `invite` modes gate everyone else.
 */
export async function registerUser(rt: AuthRuntime, input: RegisterRequest): Promise<RegistrationOutcome> {
  const email = checkEmail(input.email);
  checkPasswordPolicy(input.password, input.acknowledge_weak_password === true);
  const passwordHash = await hashPassword(input.password);
  if (await findLocalUserByEmail(rt.db, email)) return duplicateOutcome(rt, email);

  const now = rt.now();
  const first = (await countUsers(rt.db)) === 0;
  const privileged = first || isAdminEmail(rt, email);
  const mode = rt.config.registrationMode;
  const code = input.inviteCode?.trim() ?? '';
  let invite: { id: string } | undefined;
  if (code !== '' && !privileged) {
    const found = await findInviteByHash(rt.db, hashSecret(rt.hmacSecret, code));
    if (!found || found.used_at !== null || found.expires_at <= now) {
      throw new BadRequestError('invalid or expired invite code');
    }
    invite = found;
  } else if (mode === 'invite' && !privileged) {
    throw new BadRequestError('an invite code is required to register');
  }
  const status: UserStatus = privileged || mode === 'open' || invite ? 'active' : 'pending';
  const row: UserRow = {
    id: randomUUID(),
    email,
    name: input.name?.trim() || email.split('@')[0] || email,
    avatar_url: '',
    provider: 'local',
    subject: email,
    password_hash: passwordHash,
    role: privileged ? 'admin' : 'user',
    status,
    created_at: now,
    updated_at: now,
  };
  try {
    await insertUser(rt.db, row);
  } catch (error) {
    if (isUniqueViolation(error)) return duplicateOutcome(rt, email);
    throw error;
  }
  if (invite && !(await consumeInvite(rt.db, invite.id, row.id, now))) {
    // Someone used the same code a moment earlier: this account waits for approval instead.
    await updateUser(rt.db, row.id, { status: 'pending', updated_at: now });
    return { kind: 'pending' };
  }
  return status === 'pending' ? { kind: 'pending' } : { kind: 'created', user: toAuthUser(row) };
}

// A verify against this hash when the email is unknown keeps login time independent of whether
// the account exists.
let dummyHash: Promise<string> | undefined;

/** POST /api/auth/login: password check, pending/disabled refused, MaybePromote (never demotes). */
export async function loginUser(rt: AuthRuntime, emailInput: string, password: string): Promise<AuthUser> {
  const email = normaliseEmail(emailInput);
  const user = await findLocalUserByEmail(rt.db, email);
  if (!user) {
    dummyHash ??= hashPassword('keytally-dummy-password');
    await verifyPassword(password, await dummyHash);
    throw new UnauthorizedError(INVALID_CREDENTIALS);
  }
  if (!(await verifyPassword(password, user.password_hash))) throw new UnauthorizedError(INVALID_CREDENTIALS);
  if (user.status === 'pending') throw new ForbiddenError('account is pending approval');
  if (user.status === 'disabled') throw new ForbiddenError('account is disabled');
  if (user.role !== 'admin' && isAdminEmail(rt, user.email)) {
    await updateUser(rt.db, user.id, { role: 'admin', updated_at: rt.now() });
    await rt.events.publish({ kind: 'user', id: user.id });
    return toAuthUser({ ...user, role: 'admin' });
  }
  return toAuthUser(user);
}

/** `keytally user create`: no gating; the first user or --admin is admin. */
export async function createUserDirect(
  rt: AuthRuntime,
  input: { email: string; name: string; password: string; admin: boolean; acknowledgeWeak?: boolean },
): Promise<AuthUser> {
  const email = checkEmail(input.email);
  checkPasswordPolicy(input.password, input.acknowledgeWeak === true);
  if (await findLocalUserByEmail(rt.db, email)) {
    throw new AppError(409, `a user with email ${email} already exists`);
  }
  const now = rt.now();
  const first = (await countUsers(rt.db)) === 0;
  const row: UserRow = {
    id: randomUUID(),
    email,
    name: input.name.trim() || email,
    avatar_url: '',
    provider: 'local',
    subject: email,
    password_hash: await hashPassword(input.password),
    role: input.admin || first || isAdminEmail(rt, email) ? 'admin' : 'user',
    status: 'active',
    created_at: now,
    updated_at: now,
  };
  await insertUser(rt.db, row);
  return toAuthUser(row);
}

async function requireLocalUser(rt: AuthRuntime, userId: string): Promise<UserRow> {
  const user = await findUserById(rt.db, userId);
  if (!user) throw new NotFoundError('user not found');
  return user;
}

export async function updateProfile(
  rt: AuthRuntime,
  userId: string,
  changes: { name?: string; avatarUrl?: string },
): Promise<AuthUser> {
  const user = await requireLocalUser(rt, userId);
  const next = { ...user, name: changes.name ?? user.name, avatar_url: changes.avatarUrl ?? user.avatar_url };
  await updateUser(rt.db, userId, { name: next.name, avatar_url: next.avatar_url, updated_at: rt.now() });
  await rt.events.publish({ kind: 'user', id: userId });
  return toAuthUser(next);
}

/** PUT /api/auth/password: local users only; ends every session (the caller gets a new one). */
export async function changePassword(
  rt: AuthRuntime,
  userId: string,
  input: { current: string; next: string; acknowledgeWeak: boolean },
): Promise<void> {
  const user = await requireLocalUser(rt, userId);
  if (user.provider !== 'local') throw new BadRequestError('only local accounts have a password');
  if (!(await verifyPassword(input.current, user.password_hash))) {
    throw new BadRequestError('current password is incorrect');
  }
  checkPasswordPolicy(input.next, input.acknowledgeWeak);
  await updateUser(rt.db, userId, { password_hash: await hashPassword(input.next), updated_at: rt.now() });
  await endAllSessions(rt, userId);
}

// ---- admin ----------------------------------------------------------------------------------

export async function listAllUsers(rt: AuthRuntime): Promise<UserRow[]> {
  return listUsers(rt.db);
}

function refuseSelf(actorId: string, targetId: string, what: string): void {
  if (actorId === targetId) throw new BadRequestError(`cannot change your own ${what}`);
}

export async function setUserRole(
  rt: AuthRuntime,
  actorId: string,
  userId: string,
  role: Role,
): Promise<void> {
  refuseSelf(actorId, userId, 'role');
  if (!(await updateUser(rt.db, userId, { role, updated_at: rt.now() })))
    throw new NotFoundError('user not found');
  await rt.events.publish({ kind: 'user', id: userId });
}

export async function setUserStatus(
  rt: AuthRuntime,
  actorId: string,
  userId: string,
  status: UserStatus,
): Promise<void> {
  refuseSelf(actorId, userId, 'status');
  if (!(await updateUser(rt.db, userId, { status, updated_at: rt.now() }))) {
    throw new NotFoundError('user not found');
  }
  await rt.events.publish({ kind: 'user', id: userId });
}

export async function resetUserPassword(
  rt: AuthRuntime,
  userId: string,
  password: string,
  acknowledgeWeak: boolean,
): Promise<void> {
  const user = await requireLocalUser(rt, userId);
  if (user.provider !== 'local') throw new BadRequestError('only local accounts have a password');
  checkPasswordPolicy(password, acknowledgeWeak);
  await updateUser(rt.db, userId, { password_hash: await hashPassword(password), updated_at: rt.now() });
  await endAllSessions(rt, userId);
}

/** Deletes the account, its sessions and keys; its usage history stays (decisions.md section 3). */
export async function deleteUser(rt: AuthRuntime, actorId: string, userId: string): Promise<void> {
  if (actorId === userId) throw new BadRequestError('cannot delete your own account');
  if (!(await deleteUserCascade(rt.db, userId))) throw new NotFoundError('user not found');
  await rt.events.publish({ kind: 'user', id: userId });
}
