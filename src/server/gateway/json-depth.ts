/**
 * Inference bodies are re-encoded with JSON.stringify before they are forwarded, and it recurses:
 * 10,000 levels threw a RangeError (a 500). No OpenAI-shaped request needs more than ~10 levels
 * (tool schemas go deepest), so 64 leaves room while the check stays cheap.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * True when `value` nests objects/arrays deeper than `limit` (the value itself is level 1).
 * Iterative, so a hostile depth cannot overflow the stack; one pass over the containers with an
 * explicit stack of [value, depth] pairs, strings and numbers are not looked into.
 */
export function exceedsJsonDepth(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const values: object[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const current = values.pop() as object;
    const depth = depths.pop() as number;
    if (depth > limit) return true;
    if (Array.isArray(current)) {
      for (const item of current) {
        if (typeof item === 'object' && item !== null) {
          values.push(item);
          depths.push(depth + 1);
        }
      }
    } else {
      for (const key in current) {
        const item = (current as Record<string, unknown>)[key];
        if (typeof item === 'object' && item !== null) {
          values.push(item);
          depths.push(depth + 1);
        }
      }
    }
  }
  return false;
}
