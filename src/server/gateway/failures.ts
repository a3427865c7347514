import { errors as undiciErrors } from 'undici';
import { UpstreamError } from '../errors.ts';
import type { Upstream, UpstreamTimeout } from './upstreams.ts';

/** Why an inference request produced no usage row (label of keytally_usage_unrecorded_total). */
export type UnrecordedReason =
  | 'invalid_request'
  | 'unknown_model'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_status'
  | 'client_closed'
  | 'no_user'
  | 'limited'
  | 'model_not_allowed'
  | 'recorder_error'
  | 'journal_unavailable';

function errorCode(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function isTimeout(error: unknown): boolean {
  return (
    (error instanceof Error && error.name === 'TimeoutError') ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  );
}

/** A request that ends without a usage row, and why (the error handler answers `error`). */
export class RequestFailure extends Error {
  constructor(
    readonly reason: UnrecordedReason,
    readonly error: unknown,
    /** Time spent waiting on the upstream, excluded from x-keytally-overhead-ms. */
    readonly upstreamMs?: number,
  ) {
    super(reason);
  }
}

/**
 * An upstream that failed to answer, as the 502 or 504 the client sees. A 504 names the wait that
 * ran out and the setting that raises it.
 */
export function upstreamFailure(
  error: unknown,
  upstream: Upstream,
  timeout: UpstreamTimeout = upstream.timeout,
): UpstreamError {
  if (isTimeout(error)) {
    const raise = timeout.setting === null ? '' : `, or raise ${timeout.setting}`;
    return new UpstreamError(
      504,
      `The upstream "${upstream.name}" (${upstream.describe}) did not answer in time (${timeout.ms} ms); try again${raise}.`,
      { code: 'upstream_timeout' },
    );
  }
  const code = errorCode(error) ?? (error as Error)?.message ?? 'unknown error';
  return new UpstreamError(
    502,
    `Cannot reach the upstream "${upstream.name}" at ${upstream.describe} (${code}); check that it is running and that KEYTALLY_UPSTREAM_URL is right.`,
    { code: 'upstream_unreachable' },
  );
}
