import { AppError } from '../errors.ts';

/**
 * Password policy (issue #3, which wins over the reference's 72-byte bcrypt limit): never empty,
 * no NUL, at most 1024 bytes (scrypt has no length limit, but a bound keeps hashing cost fixed);
 * at least 12 characters unless the caller sends `acknowledge_weak_password`.
 */
export const MIN_PASSWORD_CHARS = 12;
export const MAX_PASSWORD_BYTES = 1024;

export class PasswordPolicyError extends AppError {
  constructor(message: string, code: string, overridable: boolean) {
    super(400, message, { type: 'invalid_request_error', extra: { error_code: code, overridable } });
  }
}

export function checkPasswordPolicy(password: string, acknowledgeWeak = false): void {
  if (password.length === 0) throw new PasswordPolicyError('password is required', 'password_empty', false);
  if (password.includes('\0')) {
    throw new PasswordPolicyError('password must not contain NUL characters', 'password_nul', false);
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new PasswordPolicyError(
      `password must be at most ${MAX_PASSWORD_BYTES} bytes`,
      'password_too_long',
      false,
    );
  }
  if ([...password].length < MIN_PASSWORD_CHARS && !acknowledgeWeak) {
    throw new PasswordPolicyError(
      `password must be at least ${MIN_PASSWORD_CHARS} characters (send acknowledge_weak_password to override)`,
      'password_too_short',
      true,
    );
  }
}
