import { describe, expect, it } from 'vitest';
import { usageRowId } from './row-id.ts';

describe('usage row ids', () => {
  it('are UUIDv7: version 7, RFC variant, the time in the first 48 bits', () => {
    const at = Date.UTC(2026, 10, 28, 18, 40, 12, 345);
    const id = usageRowId(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('sort by time and do not repeat', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => usageRowId(1_700_000_000_000 + Math.floor(i / 10)));
    expect(new Set(ids).size).toBe(ids.length);
    const byTime = ids.map((id) => id.slice(0, 13));
    expect([...byTime].sort()).toEqual(byTime);
  });
});
