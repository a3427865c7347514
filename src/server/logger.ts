import { createRequire } from 'node:module';
import pino, { type Logger, type LoggerOptions } from 'pino';
import type { LogFormat } from './config.ts';

/** Header and field paths that may hold a credential; pino replaces them before serialising. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["xi-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'password',
  'token',
  'key',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
}

/**
 * KEYTALLY_LOG_FORMAT when given; otherwise readable lines for a person at a terminal and JSON for
 * everything else (a pipe, a file, a log collector).
 */
export function selectLogFormat(given: LogFormat | undefined, stdoutIsTty: boolean): LogFormat {
  return given ?? (stdoutIsTty ? 'pretty' : 'json');
}

type PrettyFactory = (options: Record<string, unknown>) => (line: string) => string;

/** pino-pretty's formatter, or undefined where it is not installed (`npm ci --omit=dev`). */
function loadPrettyFactory(): PrettyFactory | undefined {
  try {
    return (createRequire(import.meta.url)('pino-pretty') as { prettyFactory: PrettyFactory }).prettyFactory;
  } catch {
    return undefined;
  }
}

/**
 * Formats each line in the logging call itself (pino-pretty's factory, not its transport): the
 * transport is a stream pipeline, and its last lines ("stopped") are lost when the process exits.
 */
function prettyDestination(
  out: pino.DestinationStream,
  colorize: boolean,
): pino.DestinationStream | undefined {
  const prettyFactory = loadPrettyFactory();
  if (!prettyFactory) return undefined;
  const pretty = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return { write: (line: string) => out.write(pretty(line)) };
}

export function createLogger(
  level: string,
  destination?: pino.DestinationStream,
  format: LogFormat = 'json',
): Logger {
  if (format === 'pretty') {
    // Colour only on a terminal: escape codes in a file or a test's buffer are noise.
    const out = destination ?? pino.destination({ fd: 1, sync: true });
    const pretty = prettyDestination(out, destination === undefined && process.stdout.isTTY === true);
    if (pretty) return pino(loggerOptions(level), pretty);
    const logger = pino(loggerOptions(level), out);
    logger.warn('pino-pretty is not installed: logging JSON lines');
    return logger;
  }
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type LogArgs = Parameters<Logger['info']>;

/**
 * A request's logger (`request.log`), created only when something logs at an enabled level.
 * Fastify builds one per request; a pino child per request was ~1% of a proxied request's CPU,
 * for a logger that is almost never used (the access line goes through the root logger).
 */
export class LazyChildLogger {
  private made: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: pino.Bindings,
    private readonly options: pino.ChildLoggerOptions,
  ) {}

  private get real(): Logger {
    this.made ??= this.parent.child(this.bindings, this.options);
    return this.made;
  }

  get level(): string {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  private log(method: LogMethod, args: LogArgs): void {
    if (this.made) this.made[method](...args);
    else if (this.parent.isLevelEnabled(method)) this.real[method](...args);
  }

  fatal(...args: LogArgs): void {
    this.log('fatal', args);
  }
  error(...args: LogArgs): void {
    this.log('error', args);
  }
  warn(...args: LogArgs): void {
    this.log('warn', args);
  }
  info(...args: LogArgs): void {
    this.log('info', args);
  }
  debug(...args: LogArgs): void {
    this.log('debug', args);
  }
  trace(...args: LogArgs): void {
    this.log('trace', args);
  }
  silent(): void {}

  isLevelEnabled(level: string): boolean {
    return this.made?.isLevelEnabled(level) ?? this.parent.isLevelEnabled(level);
  }

  child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger {
    return this.real.child(bindings, options);
  }
}
