import { describe, expect, it } from 'vitest';
import { usableLanguage } from './locale-guard.ts';

describe('usableLanguage', () => {
  it('keeps a tag Intl accepts', () => {
    expect(usableLanguage('de-DE')).toBe('de-DE');
    expect(usableLanguage('en-US')).toBe('en-US');
  });

  it('replaces the POSIX-locale tag Chromium reports, which Intl refuses', () => {
    expect(() => new Intl.NumberFormat('en-US@posix')).toThrow(RangeError);
    expect(usableLanguage('en-US@posix')).toBe('en-US');
  });
});
