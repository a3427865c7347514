import { Readable } from 'node:stream';
import { type ExportFormat, USAGE_EXPORT_COLUMNS, type UsageExportRow } from '../../shared/usage.ts';
import type { Db } from '../db/connection.ts';
import type { UsageRecordRow } from '../db/schema.ts';
import { iterateUsageRecords, type RecordQuery } from './usage.repository.ts';

/**
 * Export of raw usage rows as CSV or NDJSON. Rows are read in keyset pages of 1,000 and each page is
 * written before the next is read (Readable.from pulls on demand), so memory stays constant whatever
 * the export's size.
 */

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

export function toExportRow(row: UsageRecordRow): UsageExportRow {
  return {
    id: row.id,
    created_at: new Date(row.created_at).toISOString(),
    user_id: row.user_id,
    user_name: row.user_name,
    source: row.source,
    api_key_id: row.api_key_id ?? '',
    api_key_name: row.api_key_name,
    model: row.model,
    endpoint: row.endpoint,
    prompt_tokens: row.prompt_tokens,
    completion_tokens: row.completion_tokens,
    total_tokens: row.total_tokens,
    duration_ms: row.duration_ms,
    usage_origin: row.usage_origin,
    aborted: row.aborted === 1,
    stream: row.stream === 1,
    upstream: row.upstream,
    cached_tokens: row.cached_tokens,
    cache_write_tokens: row.cache_write_tokens,
    reasoning_tokens: row.reasoning_tokens,
    cost: row.cost_nanos === null ? null : row.cost_nanos / 1e9,
    price_source: row.price_source,
  };
}

/**
 * One CSV field (RFC 4180). Text that a spreadsheet would run as a formula (leading = + - @ tab or
 * CR; user and key names are user input) gets a leading apostrophe (OWASP CSV injection advice).
 */
export function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  if (typeof value !== 'string') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(row: UsageExportRow): string {
  return `${USAGE_EXPORT_COLUMNS.map((column) => csvField(row[column])).join(',')}\r\n`;
}

export function exportFileName(format: ExportFormat, now: number): string {
  return `keytally-usage-${new Date(now).toISOString().slice(0, 10)}.${format}`;
}

async function* exportChunks(db: Db, query: RecordQuery, format: ExportFormat): AsyncGenerator<string> {
  if (format === 'csv') yield `${USAGE_EXPORT_COLUMNS.join(',')}\r\n`;
  for await (const page of iterateUsageRecords(db, query)) {
    const rows = page.map(toExportRow);
    yield format === 'csv'
      ? rows.map(csvLine).join('')
      : rows.map((row) => `${JSON.stringify(row)}\n`).join('');
  }
}

/** A byte stream of the export; pages are read only as fast as the consumer drains it. */
export function createUsageExportStream(db: Db, query: RecordQuery, format: ExportFormat): Readable {
  return Readable.from(exportChunks(db, query, format), { objectMode: false });
}
