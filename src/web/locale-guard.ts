/**
 * Imported first by main.tsx, so it runs before any other module. A browser started under a POSIX
 * locale can report `navigator.language` as a tag Intl refuses (Chromium gives "en-US@posix");
 * uPlot builds an `Intl.NumberFormat(navigator.language)` when its module loads, and that RangeError
 * stopped the whole dashboard from rendering. Such a browser reports plain "en-US" instead.
 */
export function usableLanguage(tag: string): string {
  try {
    new Intl.NumberFormat(tag);
    return tag;
  } catch {
    return 'en-US';
  }
}

if (typeof navigator !== 'undefined') {
  const usable = usableLanguage(navigator.language);
  if (usable !== navigator.language) {
    Object.defineProperty(navigator, 'language', { value: usable, configurable: true });
  }
}
