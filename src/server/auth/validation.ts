import type { z } from 'zod';
import { BadRequestError } from '../errors.ts';

/**
 * Parses a /api/auth body or query: 400 naming the field, in the reference's wording where it
 * has one (`name is required`).
 */
export function parseInput<T extends z.ZodType>(
  schema: T,
  input: unknown,
  what = 'request body',
): z.infer<T> {
  if (input === undefined || input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new BadRequestError(`${what} must be a JSON object`);
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join('.') : what;
  const value = issue?.path.reduce<unknown>(
    (current, key) =>
      current !== null && typeof current === 'object'
        ? (current as Record<PropertyKey, unknown>)[key]
        : undefined,
    input,
  );
  if (
    value === undefined ||
    (issue?.message === 'is required' && typeof value === 'string' && value.trim() === '')
  ) {
    throw new BadRequestError(`${field} is required`);
  }
  throw new BadRequestError(`${field}: ${issue?.message ?? 'is invalid'}`);
}
