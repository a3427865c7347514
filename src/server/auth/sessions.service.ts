import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SessionRow } from '../db/schema.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import { hashSecret, randomHex } from './hash.ts';
import {
  deleteExpiredSessions,
  deleteSession,
  deleteSessionsOfUser,
  insertSession,
  rotateSessionRow,
} from './sessions.repository.ts';

export const SESSION_COOKIE = 'session';
export const TOKEN_COOKIE = 'token';
export const SESSION_TTL_MS = 30 * 86_400_000;
/** Cookie sessions get a new token once an hour (reference section 3.3). */
export const SESSION_ROTATION_MS = 3_600_000;
/**
 * After a rotation the old token keeps working for 60 s: a dashboard fires requests in parallel,
 * and those already in flight with the old cookie must not come back 401 (reference section 3.3
 * deletes the old session at once, which logs such pages out).
 */
export const SESSION_ROTATION_GRACE_MS = 60_000;

/** A new session: 32 random bytes as 64 hex characters; only its HMAC is stored. */
export async function createSession(
  rt: AuthRuntime,
  userId: string,
  expiresAt?: number,
): Promise<{ token: string; row: SessionRow }> {
  const now = rt.now();
  const token = randomHex(32);
  const row: SessionRow = {
    id: hashSecret(rt.hmacSecret, token),
    user_id: userId,
    expires_at: expiresAt ?? now + SESSION_TTL_MS,
    rotated_at: now,
    created_at: now,
  };
  await insertSession(rt.db, row);
  return { token, row };
}

export function needsRotation(rotatedAt: number, now: number): boolean {
  return now - rotatedAt >= SESSION_ROTATION_MS;
}

/**
 * Gives the session a new token with the same expiry; the old token lapses after the grace period.
 * Undefined when another request rotated it first (or it is gone).
 */
export async function rotateSession(
  rt: AuthRuntime,
  sessionId: string,
  userId: string,
  expiresAt: number,
): Promise<string | undefined> {
  const now = rt.now();
  const token = randomHex(32);
  const next: SessionRow = {
    id: hashSecret(rt.hmacSecret, token),
    user_id: userId,
    expires_at: expiresAt,
    rotated_at: now,
    created_at: now,
  };
  const rotated = await rotateSessionRow(
    rt.db,
    sessionId,
    next,
    now - SESSION_ROTATION_MS,
    Math.min(expiresAt, now + SESSION_ROTATION_GRACE_MS),
  );
  if (!rotated) return undefined;
  await rt.events.publish({ kind: 'session', id: sessionId });
  return token;
}

export async function endSession(rt: AuthRuntime, sessionId: string): Promise<void> {
  await deleteSession(rt.db, sessionId);
  await rt.events.publish({ kind: 'session', id: sessionId });
}

/** Ends every session of a user (password change, "sign out everywhere", admin reset). */
export async function endAllSessions(rt: AuthRuntime, userId: string): Promise<void> {
  await deleteSessionsOfUser(rt.db, userId);
  await rt.events.publish({ kind: 'user', id: userId });
}

export async function cleanExpiredSessions(rt: AuthRuntime): Promise<number> {
  return deleteExpiredSessions(rt.db, rt.now());
}

/** Secure only when the client reached us over https (directly or via a proxy saying so). */
export function isHttps(request: FastifyRequest): boolean {
  const forwarded = request.headers['x-forwarded-proto'];
  const proto = Array.isArray(forwarded) ? forwarded[0] : forwarded;
  return request.protocol === 'https' || proto?.split(',')[0]?.trim().toLowerCase() === 'https';
}

export function setCredentialCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  name: typeof SESSION_COOKIE | typeof TOKEN_COOKIE,
  value: string,
): void {
  reply.setCookie(name, value, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    maxAge: SESSION_TTL_MS / 1000,
    secure: isHttps(request),
  });
}

export function clearCredentialCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  name: typeof SESSION_COOKIE | typeof TOKEN_COOKIE,
): void {
  reply.setCookie(name, '', {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    maxAge: -1,
    secure: isHttps(request),
  });
}
