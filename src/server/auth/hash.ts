import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * hex(HMAC-SHA256(secret, text)); with an empty secret hex(SHA-256(text)) (reference section 3.1).
 * The same function hashes API keys, session tokens and invite codes.
 */
export function hashSecret(secret: string, text: string): string {
  if (secret === '') return createHash('sha256').update(text).digest('hex');
  return createHmac('sha256', secret).update(text).digest('hex');
}

/** Constant-time string comparison (via fixed-length digests, so lengths do not leak either). */
export function constantTimeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

export interface HmacSecretSource {
  secret: string;
  /** 'config' (KEYTALLY_HMAC_SECRET), 'file' (read) or 'generated' (written just now). */
  origin: 'config' | 'file' | 'generated';
  file?: string;
}

/** KEYTALLY_HMAC_SECRET, else `<dataDir>/.hmac_secret` if it holds ≥32 characters, else a new one (0600). */
export function loadOrCreateHmacSecret(configured: string | undefined, dataDir: string): HmacSecretSource {
  if (configured) return { secret: configured, origin: 'config' };
  const file = path.join(dataDir, '.hmac_secret');
  try {
    const existing = fs.readFileSync(file, 'utf8').trim();
    if (existing.length >= 32) return { secret: existing, origin: 'file', file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomHex(32);
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return { secret, origin: 'generated', file };
}
