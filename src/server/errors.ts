import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { isDatabaseUnavailable, isInvalidValue } from './db/dialect.ts';

/**
 * One error hierarchy. Handlers throw; `sendError` is the one place that turns an error into a
 * response, in one of four envelopes:
 * - OpenAI's `{error:{message,type,code}}` for `/v1/*`, the unprefixed proxy routes, `/metrics` and
 *   `/api/*` outside `/api/auth/`;
 * - Anthropic's `{type:"error",error:{type,message},request_id}` (+ `message`) on `/v1/messages` and
 *   its count_tokens;
 * - Ollama's `{error: message}` on Ollama's native routes (`/api/chat`, `/api/tags`, ...);
 * - LocalAI's flat `{error: message, ...extra}` for `/api/auth/*`.
 * An error may carry an exact `body` where the reference fixes one (e.g. RequireAdmin's shapes).
 */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly options: {
      /** OpenAI `type`; defaults from the status. */
      type?: string;
      /** OpenAI `code` (a string, or null: the default). */
      code?: string | null;
      /** Extra fields merged into the flat `/api/auth/*` body (e.g. error_code, overridable). */
      extra?: Record<string, unknown>;
      /** An exact body that overrides both envelopes. */
      body?: unknown;
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, options: AppError['options'] = {}) {
    super(400, message, { type: 'invalid_request_error', ...options });
  }
}
export class UnauthorizedError extends AppError {
  constructor(message = 'not authenticated', options: AppError['options'] = {}) {
    super(401, message, { type: 'authentication_error', ...options });
  }
}
export class ForbiddenError extends AppError {
  constructor(message = 'forbidden', options: AppError['options'] = {}) {
    super(403, message, { type: 'authorization_error', ...options });
  }
}
export class NotFoundError extends AppError {
  constructor(message = 'not found', options: AppError['options'] = {}) {
    super(404, message, { type: 'invalid_request_error', ...options });
  }
}
export class ConflictError extends AppError {
  constructor(message: string, options: AppError['options'] = {}) {
    super(409, message, { type: 'invalid_request_error', ...options });
  }
}
export class TooManyRequestsError extends AppError {
  constructor(retryAfterSeconds: number, message = 'too many requests, try again later') {
    super(429, message, {
      type: 'rate_limit_error',
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    });
  }
}
/** The upstream could not be reached (502) or timed out (504). */
export class UpstreamError extends AppError {
  constructor(statusCode: 502 | 504, message: string, options: AppError['options'] = {}) {
    super(statusCode, message, { type: 'upstream_error', ...options });
  }
}
export class ServiceUnavailableError extends AppError {
  constructor(message: string, options: AppError['options'] = {}) {
    super(503, message, { type: 'service_unavailable', ...options });
  }
}

/** True for paths answered in OpenAI's error envelope. */
export function usesOpenAiEnvelope(url: string): boolean {
  return errorEnvelopeOf(url) === 'openai';
}

// pg-pool gives up on a connection after 5 s; a retry sooner than that would meet the same outage.
const DATABASE_RETRY_AFTER_S = 5;

/**
 * Ollama's native routes (its clients read `{"error": "..."}`); the rest of /api/* outside
 * /api/auth/ keeps OpenAI's envelope.
 */
export const OLLAMA_PATHS: ReadonlySet<string> = new Set([
  '/api/chat',
  '/api/generate',
  '/api/embed',
  '/api/embeddings',
  '/api/tags',
  '/api/show',
  '/api/version',
]);

export type ErrorEnvelope = 'openai' | 'anthropic' | 'ollama' | 'localai';

/**
 * The error envelope a path's clients read: Anthropic's on the Messages routes (so
 * `@anthropic-ai/sdk` and `@ai-sdk/anthropic` show keytally's message), Ollama's on its native
 * routes, LocalAI's flat one on /api/auth/*, OpenAI's everywhere else.
 */
export function errorEnvelopeOf(url: string): ErrorEnvelope {
  const path = url.split('?')[0] ?? '';
  if (path.startsWith('/api/auth/') || path === '/api/auth') return 'localai';
  if (OLLAMA_PATHS.has(path)) return 'ollama';
  if (path.startsWith('/v1/messages') || path.startsWith('/messages')) {
    const rest = path.slice(path.indexOf('/messages') + '/messages'.length);
    if (rest === '' || rest === '/count_tokens') return 'anthropic';
  }
  return 'openai';
}

// https://docs.anthropic.com/en/api/errors
const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

const DEFAULT_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'authorization_error',
  404: 'invalid_request_error',
  408: 'invalid_request_error',
  413: 'invalid_request_error',
  414: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  431: 'invalid_request_error',
  500: 'server_error',
  502: 'upstream_error',
  503: 'service_unavailable',
  504: 'upstream_error',
};

/** Message naming the field for a zod failure: `name: is required`. */
export function describeZodError(error: ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid request';
  const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
  const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
  return `${field}: ${missing ? 'is required' : issue.message}`;
}

function normalise(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof ZodError) return new BadRequestError(describeZodError(error));
  const fastifyError = error as FastifyError;
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const messages: Record<string, string> = {
      FST_ERR_CTP_BODY_TOO_LARGE: 'request body is too large',
      FST_ERR_BAD_URL: 'the URL is not valid (a malformed percent-encoding)',
      FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is too long',
      FST_ERR_CTP_INVALID_JSON_BODY: 'request body is not valid JSON',
      FST_ERR_CTP_EMPTY_JSON_BODY: 'request body is empty but content-type is application/json',
      FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported content-type',
    };
    let message = messages[fastifyError.code] ?? fastifyError.message;
    if (fastifyError instanceof SyntaxError || fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      message = 'request body is not valid JSON';
    }
    return new AppError(status, message, { cause: error });
  }
  if (isInvalidValue(error)) {
    return new BadRequestError('a value in the request cannot be stored (out of range or not valid text)', {
      cause: error,
    });
  }
  if (isDatabaseUnavailable(error)) {
    return new ServiceUnavailableError('the database is unavailable; retry shortly', {
      headers: { 'retry-after': String(DATABASE_RETRY_AFTER_S) },
      cause: error,
    });
  }
  return new AppError(500, 'internal server error', { type: 'server_error', cause: error });
}

/** The body of an error answer on `url`, in that route's envelope. */
export function errorBody(appError: AppError, url: string, requestId: string): unknown {
  const status = appError.statusCode;
  if (appError.options.body !== undefined) return appError.options.body;
  switch (errorEnvelopeOf(url)) {
    case 'openai':
      return {
        error: {
          message: appError.message,
          type: appError.options.type ?? DEFAULT_TYPES[status] ?? 'error',
          // OpenAI's clients read `code` as a string or null, never a number.
          code: typeof appError.options.code === 'string' ? appError.options.code : null,
        },
      };
    case 'anthropic':
      return {
        type: 'error',
        error: { type: ANTHROPIC_TYPES[status] ?? 'api_error', message: appError.message },
        request_id: requestId,
        // Beside Anthropic's fields: @anthropic-ai/sdk builds `error.message` from a top-level
        // `message` and otherwise from the whole body as raw JSON.
        message: appError.message,
      };
    case 'ollama':
      return { error: appError.message };
    case 'localai':
      return { error: appError.message, ...appError.options.extra };
  }
}

export function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const appError = normalise(error);
  const status = appError.statusCode;
  if (status >= 500 && !(error instanceof AppError)) {
    request.log.error({ err: error }, 'unhandled error');
  }
  for (const [name, value] of Object.entries(appError.options.headers ?? {})) reply.header(name, value);
  reply.code(status);
  return reply.send(errorBody(appError, request.url, request.id));
}
