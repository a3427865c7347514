import { nextStart, startOfLabel, unitOfLabel } from '../../pages/usage/buckets.ts';

/** [start, end) of a bucket label in epoch ms (UTC). */
export function bucketBounds(label: string): [number, number] {
  const start = startOfLabel(label);
  return [start, nextStart(start, unitOfLabel(label))];
}

/** "Nov 28, 2026", "Nov 28, 14:00–15:00 UTC" or "November 2026": what a tooltip row is about. */
export function longLabel(label: string): string {
  const [start] = bucketBounds(label);
  const date = new Date(start);
  switch (unitOfLabel(label)) {
    case 'hour': {
      const day = date.toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
      const hour = label.slice(11, 13);
      const next = String((Number(hour) + 1) % 24).padStart(2, '0');
      return `${day}, ${hour}:00–${next}:00 UTC`;
    }
    case 'day':
      return date.toLocaleDateString('en-US', {
        weekday: 'short',
        month: 'short',
        day: 'numeric',
        year: 'numeric',
        timeZone: 'UTC',
      });
    case 'month':
      return date.toLocaleDateString('en-US', { month: 'long', year: 'numeric', timeZone: 'UTC' });
  }
}
