import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Db } from './db/connection.ts';
import type { UsageRecorder } from './usage/recorder.ts';

/**
 * What every feature's routes are built from. Its own module (below the route modules) so that
 * route modules do not import app.ts, which imports them.
 */
export interface AppDeps {
  config: Config;
  db: Db;
  logger: Logger;
  hmacSecret: string;
  recorder: UsageRecorder;
  /** Injected clock (epoch ms) for tests; Date.now by default. */
  now?: () => number;
}
