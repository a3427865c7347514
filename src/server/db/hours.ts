/** Start of the UTC hour containing `epochMs` (no dependencies: the usage writer thread uses it). */
export function hourStart(epochMs: number): number {
  return epochMs - (((epochMs % 3_600_000) + 3_600_000) % 3_600_000);
}
