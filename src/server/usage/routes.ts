import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  AdminSourcesQuery,
  AdminUsageExportQuery,
  AdminUsageQuery,
  type ExportFormat,
  SelfSourcesQuery,
  SelfUsageQuery,
  UsageExportQuery,
  UsageQuery,
} from '../../shared/usage.ts';
import { requireAdmin, requireUser } from '../auth/guards.ts';
import type { Db } from '../db/connection.ts';
import type { AppDeps } from '../deps.ts';
import { ForbiddenError, UnauthorizedError } from '../errors.ts';
import { createUsageExportStream, EXPORT_CONTENT_TYPES, exportFileName } from './export.ts';
import { getAllSourcesJson, getUserSources } from './sources.service.ts';
import { getPreviousTotals, getSourcesView, type SourcesView } from './sources-view.ts';
import type { RecordQuery } from './usage.repository.ts';
import { getAllUsage, getKeyUsage, getUserUsage, optionalParam } from './usage.service.ts';
import { resolveWindow } from './usage-window.ts';

/**
 * The usage endpoints (reference 9.1, decisions.md 6). `/api/auth/*` paths are exempt from the auth
 * hook's 401, so every handler checks the caller itself.
 */
export async function registerUsageRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { db } = deps;
  const now = () => deps.now?.() ?? Date.now();

  app.get('/api/auth/usage', async (request) => {
    const auth = requireUser(request);
    const query = SelfUsageQuery.parse(request.query);
    const at = now();
    const window = resolveWindow(query, at);
    const usage = await getUserUsage(db, auth.user.id, window);
    if (query.compare !== 'previous') return usage;
    return { ...usage, previous: await getPreviousTotals(db, window, { userId: auth.user.id }, at) };
  });

  app.get('/api/auth/admin/usage', async (request) => {
    requireAdmin(request);
    const query = AdminUsageQuery.parse(request.query);
    const at = now();
    const window = resolveWindow(query, at);
    const filter = { userId: optionalParam(query.user_id) };
    const usage = await getAllUsage(db, window, filter);
    if (query.compare !== 'previous') return usage;
    return { ...usage, previous: await getPreviousTotals(db, window, filter, at) };
  });

  app.get('/api/auth/usage/sources', async (request) => {
    const auth = requireUser(request);
    const query = SelfSourcesQuery.parse(request.query);
    const at = now();
    const window = resolveWindow(query, at);
    const view = viewOf(query);
    if (!view) return getUserSources(db, auth.user.id, window);
    return getSourcesView(db, window, { userId: auth.user.id, excludeLegacy: true }, false, view, at);
  });

  app.get('/api/auth/admin/usage/sources', async (request, reply) => {
    requireAdmin(request);
    const query = AdminSourcesQuery.parse(request.query);
    const at = now();
    const window = resolveWindow(query, at);
    const filter = { userId: optionalParam(query.user_id), apiKeyId: optionalParam(query.api_key_id) };
    const view = viewOf(query);
    if (view) return getSourcesView(db, window, filter, true, view, at);
    const json = await getAllSourcesJson(db, window, filter);
    return reply.type('application/json; charset=utf-8').send(json);
  });

  app.get('/api/auth/usage/export', async (request, reply) => {
    const auth = requireUser(request);
    const query = UsageExportQuery.parse(request.query);
    const { range } = resolveWindow(query, now());
    return sendExport(db, reply, { range, userId: auth.user.id }, query.format, now());
  });

  app.get('/api/auth/admin/usage/export', async (request, reply) => {
    requireAdmin(request);
    const query = AdminUsageExportQuery.parse(request.query);
    const { range } = resolveWindow(query, now());
    const filter: RecordQuery = {
      range,
      userId: optionalParam(query.user_id),
      apiKeyId: optionalParam(query.api_key_id),
    };
    return sendExport(db, reply, filter, query.format, now());
  });

  // Self-service for scripts: the calling key's own usage, answered in OpenAI's error envelope.
  app.get('/v1/usage', async (request) => {
    const apiKey = requireCallingApiKey(request);
    const query = UsageQuery.parse(request.query);
    return getKeyUsage(db, apiKey, resolveWindow(query, now()));
  });
}

/** The dashboard extras of a sources query, or null for the LocalAI-shaped default answer. */
function viewOf(query: SelfSourcesQuery): SourcesView | null {
  if (query.top === undefined && query.compare === undefined) return null;
  return { top: query.top, keep: optionalParam(query.keep), compare: query.compare };
}

function requireCallingApiKey(request: FastifyRequest): { id: string; name: string; prefix: string } {
  const auth = request.auth;
  if (!auth) throw new UnauthorizedError('An authentication key is required');
  if (auth.source !== 'apikey' || !auth.apiKey) {
    throw new ForbiddenError(
      'GET /v1/usage reports the usage of the API key that calls it; authenticate with a kt- API key (sessions and legacy keys have no per-key usage)',
      { code: 'api_key_required' },
    );
  }
  return auth.apiKey;
}

function sendExport(
  db: Db,
  reply: FastifyReply,
  query: RecordQuery,
  format: ExportFormat,
  now: number,
): FastifyReply {
  return reply
    .header('content-type', EXPORT_CONTENT_TYPES[format])
    .header('content-disposition', `attachment; filename="${exportFileName(format, now)}"`)
    .header('cache-control', 'no-store')
    .send(createUsageExportStream(db, query, format));
}
