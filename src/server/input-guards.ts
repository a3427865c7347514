import type { FastifyInstance } from 'fastify';
import { BadRequestError } from './errors.ts';

const PASSWORD_FIELDS = new Set(['password', 'current_password', 'new_password']);

/**
 * The dotted path (`messages.0.content`) of the first string in `value` that holds a NUL character,
 * or null. PostgreSQL cannot store U+0000 in text, so such a value failed with a 500 there (and was
 * stored on SQLite): refused up front, on both. Iterative: a deeply nested body cannot overflow it.
 */
export function findNulString(value: unknown, root: string): string | null {
  const values: unknown[] = [value];
  const paths: string[] = [root];
  while (values.length > 0) {
    const current = values.pop();
    const path = paths.pop() ?? root;
    if (typeof current === 'string') {
      if (current.includes('\u0000')) return path || 'body';
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    for (const key of Object.keys(current)) {
      if (key.includes('\u0000')) return path ? `${path}.${key}` : key;
      // Passwords are hashed, never stored as text, and the password policy names a NUL itself.
      if (PASSWORD_FIELDS.has(key)) continue;
      values.push((current as Record<string, unknown>)[key]);
      paths.push(path ? `${path}.${key}` : key);
    }
  }
  return null;
}

/**
 * Path parameters and query strings of every route, and the bodies of the API routes (small, at most
 * 64 KiB), are refused with a 400 naming the field when they hold a NUL character. Proxied inference
 * bodies are the upstream's business; their `model`, which keytally stores, is checked by the proxy.
 */
export function registerInputGuards(app: FastifyInstance): void {
  app.addHook('preValidation', (request, _reply, done) => {
    const field =
      findNulString(request.params, '') ??
      findNulString(request.query, '') ??
      (request.url.startsWith('/api/') ? findNulString(request.body, '') : null);
    if (field === null) return done();
    done(new BadRequestError(`${field}: must not contain NUL characters`));
  });
}
