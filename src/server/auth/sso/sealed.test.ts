import { describe, expect, it } from 'vitest';
import { seal, unseal } from './sealed.ts';

const SECRET = 'a-test-hmac-secret-of-at-least-32-characters';

describe('sealed cookie values', () => {
  const sealed = seal(SECRET, 'kt_sso_oidc', { state: 's', codeVerifier: 'v' }, 2_000);

  it('open with the same secret and purpose before they expire, and hide their content', () => {
    expect(unseal(SECRET, 'kt_sso_oidc', sealed, 1_999)).toEqual({
      state: 's',
      codeVerifier: 'v',
      exp: 2_000,
    });
    expect(Buffer.from(sealed, 'base64url').toString('latin1')).not.toContain('codeVerifier');
  });

  it('refuse expiry, another purpose, another secret, a flipped byte and garbage', () => {
    expect(unseal(SECRET, 'kt_sso_oidc', sealed, 2_000)).toBeUndefined();
    expect(unseal(SECRET, 'kt_sso_github', sealed, 1_000)).toBeUndefined();
    expect(unseal(`${SECRET}x`, 'kt_sso_oidc', sealed, 1_000)).toBeUndefined();
    const raw = Buffer.from(sealed, 'base64url');
    raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
    expect(unseal(SECRET, 'kt_sso_oidc', raw.toString('base64url'), 1_000)).toBeUndefined();
    expect(unseal(SECRET, 'kt_sso_oidc', 'not-a-sealed-value', 1_000)).toBeUndefined();
    expect(unseal(SECRET, 'kt_sso_oidc', undefined, 1_000)).toBeUndefined();
  });
});
