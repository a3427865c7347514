/**
 * Series colours derived from a series' id, so a key keeps its colour across periods, filters and
 * reloads. The palette is Okabe and Ito's colour-blind-safe set (black swapped for a purple, its
 * yellow darkened to stay visible on white); no two entries are the same hue family.
 */
export const SERIES_PALETTE = [
  '#0072b2', // blue
  '#e69f00', // orange
  '#009e73', // bluish green
  '#cc79a7', // reddish purple
  '#56b4e9', // sky blue
  '#d55e00', // vermillion
  '#a89a1f', // dark yellow
  '#6a3d9a', // purple
] as const;

/** The grey of "Other" and of anything that stands for many series. */
export const OTHER_COLOR = '#8c96a8';

/** FNV-1a: small, fast and spreads similar ids (uuids differing in one digit) over the palette. */
export function hashOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Colours for ids listed largest first: each takes its hashed palette slot, or the next free one when
 * a larger series already holds it, so the largest series always show their own colour and no two
 * of the first eight share one.
 */
export function assignColors(ids: readonly string[]): Map<string, string> {
  const taken = new Set<number>();
  const colors = new Map<string, string>();
  for (const id of ids) {
    let slot = hashOf(id) % SERIES_PALETTE.length;
    if (taken.size < SERIES_PALETTE.length) {
      while (taken.has(slot)) slot = (slot + 1) % SERIES_PALETTE.length;
    }
    taken.add(slot);
    colors.set(id, SERIES_PALETTE[slot] ?? OTHER_COLOR);
  }
  return colors;
}
