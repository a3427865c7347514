import { percent } from '../../format.ts';

/**
 * How much of a limit is used, as a bar (decorative: the figures stand beside it). `tones`: warning
 * from 70%, danger from 90%.
 */
export function UsageBar({ used, max, tones = true }: { used: number; max: number; tones?: boolean }) {
  const share = percent(used, max);
  const background = !tones
    ? undefined
    : share >= 90
      ? 'var(--color-danger)'
      : share >= 70
        ? 'var(--color-warning)'
        : undefined;
  return (
    <div className="bar-track" aria-hidden="true">
      <div className="bar-fill" style={{ width: `${Math.min(100, share)}%`, background }} />
    </div>
  );
}
