import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Db } from '../db/connection.ts';
import { CredentialCache } from './credential-cache.ts';
import type { AuthEvents } from './invalidation.ts';
import { createAuthPublisher } from './invalidation.ts';

/** Everything the auth services need; built once per app (or per CLI command). */
export interface AuthRuntime {
  db: Db;
  config: Config;
  hmacSecret: string;
  logger: Logger;
  now: () => number;
  cache: CredentialCache;
  events: AuthEvents;
  /** Called on every successful API-key validation (the usage recorder coalesces `last_used`). */
  noteKeyUsed: (keyId: string, at: number) => void;
}

/** A runtime for CLI commands: no listener, but changes are still announced to running servers. */
export function createCliAuthRuntime(input: {
  db: Db;
  config: Config;
  hmacSecret: string;
  logger: Logger;
}): AuthRuntime {
  const cache = new CredentialCache();
  return {
    ...input,
    now: Date.now,
    cache,
    events: createAuthPublisher(input.db, cache, input.logger),
    noteKeyUsed: () => {},
  };
}
