import fs from 'node:fs';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { PriceInput } from '../../shared/cost.ts';
import { type Config, ConfigError } from '../config.ts';
import { inferProvider, isCatalogProvider } from '../cost/catalog.ts';

/** One upstream of a KEYTALLY_CONFIG file. */
export const UpstreamConfig = z.object({
  name: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores'),
  url: z
    .string()
    .trim()
    .refine(
      (value) => /^https?:\/\//.test(value) && URL.canParse(value),
      'must be an http:// or https:// URL',
    ),
  api_key: z.string().min(1, 'must not be empty').optional(),
  /** Models this upstream serves; omitted: it serves every model no other upstream lists. */
  models: z.array(z.string().trim().min(1, 'must not be empty')).optional(),
  timeout_ms: z.number().int().min(1).max(86_400_000).optional(),
  /**
   * Whose prices the catalogue applies to this upstream's models (a genai-prices provider id such as
   * `openai` or `anthropic`; `none`: admin prices only). Omitted: inferred from the URL's host, else
   * matched by model name (gpt-*, claude-*, …).
   */
  provider: z
    .string()
    .trim()
    .regex(/^[a-z0-9._-]{1,64}$/, 'must be a provider id such as openai, anthropic or none')
    .optional(),
  /**
   * What the upstream speaks: `openai` (url is its OpenAI base, e.g. `…/v1`) or `ollama` (url is
   * the Ollama root; Ollama's native /api/* routes go there, the OpenAI routes to its `/v1`).
   */
  api: z.enum(['openai', 'ollama']).default('openai'),
  /** Sent as OpenAI-Organization / OpenAI-Project instead of the client's (header hygiene). */
  organization: z.string().trim().min(1, 'must not be empty').optional(),
  project: z.string().trim().min(1, 'must not be empty').optional(),
});
export type UpstreamConfig = z.infer<typeof UpstreamConfig>;

export const UpstreamsFile = z.object({
  upstreams: z.array(UpstreamConfig).min(1, 'must list at least one upstream'),
  /** Admin prices of the configuration (decisions.md section 8). */
  prices: z.array(PriceInput).optional(),
});
export type UpstreamsFile = z.infer<typeof UpstreamsFile>;

/** Reads and validates the KEYTALLY_CONFIG file; throws ConfigError naming the file and field. */
export function loadUpstreamsFile(file: string): UpstreamsFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError('KEYTALLY_CONFIG', `cannot read ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    // Loaded only when there is a file to read (most deployments set KEYTALLY_UPSTREAM_URL or none).
    const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    raw = yaml.parse(text);
  } catch (error) {
    throw new ConfigError('KEYTALLY_CONFIG', `${file} is not valid YAML: ${(error as Error).message}`);
  }
  const parsed = UpstreamsFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'file';
    throw new ConfigError('KEYTALLY_CONFIG', `${file}: ${field}: ${issue?.message ?? 'invalid'}`);
  }
  const names = new Set<string>();
  for (const upstream of parsed.data.upstreams) {
    if (names.has(upstream.name)) {
      throw new ConfigError('KEYTALLY_CONFIG', `${file}: upstream name "${upstream.name}" is used twice`);
    }
    names.add(upstream.name);
    if (upstream.provider && upstream.provider !== 'none' && !isCatalogProvider(upstream.provider)) {
      throw new ConfigError(
        'KEYTALLY_CONFIG',
        `${file}: upstream "${upstream.name}": provider "${upstream.provider}" is not in the price catalogue (use e.g. openai, anthropic, google, or none)`,
      );
    }
  }
  return parsed.data;
}

/** The upstreams of the configuration: KEYTALLY_CONFIG's list, else KEYTALLY_UPSTREAM_URL, else none. */
export function upstreamConfigs(config: Config): UpstreamConfig[] {
  if (config.configFile) return loadUpstreamsFile(config.configFile).upstreams;
  if (config.upstreamUrl) {
    return [
      {
        name: 'default',
        url: config.upstreamUrl,
        api_key: config.upstreamApiKey,
        api: isOllamaRoot(config.upstreamUrl) ? 'ollama' : 'openai',
      },
    ];
  }
  return [];
}

/** The admin prices of the KEYTALLY_CONFIG file (none without one). */
export function configPrices(config: Config): PriceInput[] {
  return config.configFile ? (loadUpstreamsFile(config.configFile).prices ?? []) : [];
}

/**
 * `provider` as configured (`none`: null); else none for an Ollama upstream (local models: a local
 * `gpt-oss` is not billed at OpenAI's price); else the genai-prices provider whose API URL this is.
 */
export function catalogProviderOf(
  upstream: Pick<UpstreamConfig, 'provider' | 'url' | 'api'>,
): string | null | undefined {
  if (upstream.provider === 'none') return null;
  if (upstream.provider) return upstream.provider;
  if (upstream.api === 'ollama') return null;
  return inferProvider(upstream.url);
}

/**
 * KEYTALLY_UPSTREAM_URL without a path (`http://127.0.0.1:11434`) is an Ollama root: an OpenAI
 * base URL always has one (`/v1`, `/openai/v1`), and Ollama's own root serves both its native API
 * and, below `/v1`, the OpenAI one.
 */
export function isOllamaRoot(url: string): boolean {
  return new URL(url).pathname.replace(/\/+$/, '') === '';
}
