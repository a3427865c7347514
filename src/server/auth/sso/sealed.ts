import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * Sealed values for the short-lived single sign-on cookies (login state, pending link): AES-256-GCM
 * with a key derived from the HMAC secret, so every instance sharing the secret can open them and
 * no server-side state is needed. The purpose is authenticated data: a value sealed for one cookie
 * does not open as another. Carries the PKCE verifier and an invite code, hence encrypted, not just
 * signed.
 */

const IV_BYTES = 12;
const TAG_BYTES = 16;

function keyOf(secret: string): Buffer {
  return createHmac('sha256', secret).update('keytally sso cookie v1').digest();
}

export function seal(secret: string, purpose: string, value: object, expiresAt: number): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyOf(secret), iv);
  cipher.setAAD(Buffer.from(purpose));
  const plain = Buffer.from(JSON.stringify({ ...value, exp: expiresAt }));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The sealed object, or undefined when it is forged, for another purpose, malformed or expired. */
export function unseal(secret: string, purpose: string, sealed: string | undefined, now: number): unknown {
  if (!sealed) return undefined;
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(secret), raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(purpose));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    const value = JSON.parse(plain.toString('utf8')) as { exp?: unknown };
    if (typeof value.exp !== 'number' || value.exp <= now) return undefined;
    return value;
  } catch {
    return undefined;
  }
}
