import { type CatalogEntry, catalogRatesAt, findCatalogEntry } from './catalog.ts';
import { type CostCounts, costNanosOf, type Rates } from './rates.ts';

export type PriceSource = 'admin' | 'catalog' | 'none';

export interface CostResult {
  /** Integer nano-USD; null when no price is known. */
  costNanos: number | null;
  source: PriceSource;
}

/** One version of an admin price (YAML `prices:` or /api/auth/admin/prices), rates in micros. */
export interface AdminPrice {
  id: string;
  /** Exact model name, or a glob: `*` any run of characters, `?` one character. */
  model: string;
  input: number;
  output: number;
  cachedInput: number | null;
  cacheWrite: number | null;
  /** Epoch ms: rows recorded from then on get this price. */
  effectiveFrom: number;
  origin: 'config' | 'api';
}

/**
 * Where an upstream's models are looked up in the catalogue: a genai-prices provider id, `null` for
 * none (the upstream's prices are admin prices only), or undefined to match by model name.
 */
export type CatalogProvider = string | null | undefined;

interface CompiledAdmin {
  effectiveFrom: number;
  rates: Rates;
}

/** What a (model, provider) resolves to, cached: its admin versions in order of precedence, and the catalogue's entry. */
interface Resolution {
  admin: CompiledAdmin[];
  catalog: CatalogEntry | null;
}

const NONE: CostResult = Object.freeze({ costNanos: null, source: 'none' }) as CostResult;
// Model names come from clients and upstreams; past this many (model, provider) pairs the cache
// starts over rather than growing without bound.
const MAX_CACHED = 10_000;

export function isGlob(model: string): boolean {
  return model.includes('*') || model.includes('?');
}

export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${body}$`, 's');
}

function ratesOf(price: AdminPrice): Rates {
  return {
    input: price.input,
    output: price.output,
    cachedInput: price.cachedInput ?? price.input,
    cacheWrite: price.cacheWrite ?? price.input,
  };
}

/** The literal characters of a pattern: a longer one is more specific. */
function specificity(model: string): number {
  return model.replace(/[*?]/g, '').length;
}

/**
 * Prices every usage row at record time, on the request path: `costOf` is synchronous and, once a
 * (model, provider) pair has been seen, a Map lookup, a walk over that model's few admin versions
 * and integer arithmetic. Admin prices win over the catalogue. Among admin prices an exact name wins
 * over a glob, a more specific glob over a less specific one, and within one pattern the newest
 * version already in effect at the row's time applies.
 */
export class PriceBook {
  private configPrices: AdminPrice[] = [];
  private apiPrices: AdminPrice[] = [];
  /** provider key → model → resolution: two lookups, no key string built per row. */
  private readonly cache = new Map<string, Map<string, Resolution>>();
  private cached = 0;
  private readonly catalogCache = new Map<string, CatalogEntry | null>();

  constructor(configPrices: readonly AdminPrice[] = []) {
    this.configPrices = [...configPrices];
  }

  /** Replaces the prices stored in the database (after a change here or on another instance). */
  setApiPrices(prices: readonly AdminPrice[]): void {
    this.apiPrices = [...prices];
    this.cache.clear();
    this.cached = 0;
  }

  adminPrices(): AdminPrice[] {
    return [...this.configPrices, ...this.apiPrices];
  }

  costOf(model: string, provider: CatalogProvider, at: number, counts: CostCounts): CostResult {
    const resolution = this.resolve(model, provider);
    for (const version of resolution.admin) {
      if (version.effectiveFrom <= at) {
        return { costNanos: costNanosOf(version.rates, counts), source: 'admin' };
      }
    }
    if (resolution.catalog) {
      const rates = catalogRatesAt(resolution.catalog, at, counts.prompt);
      if (rates) return { costNanos: costNanosOf(rates, counts), source: 'catalog' };
    }
    return NONE;
  }

  private resolve(model: string, provider: CatalogProvider): Resolution {
    // '\u0000' cannot be a provider id (they match [a-z0-9._-]): it stands for "none".
    const providerKey = provider === null ? '\u0000' : (provider ?? '');
    let byModel = this.cache.get(providerKey);
    const cached = byModel?.get(model);
    if (cached) return cached;
    const matching = this.adminPrices().filter((price) =>
      isGlob(price.model) ? globToRegExp(price.model).test(model) : price.model === model,
    );
    matching.sort(
      (a, b) =>
        Number(isGlob(a.model)) - Number(isGlob(b.model)) ||
        specificity(b.model) - specificity(a.model) ||
        b.effectiveFrom - a.effectiveFrom ||
        // The same pattern and time in the config file and the API: the API's (newer intent) wins.
        (a.origin === b.origin ? 0 : a.origin === 'api' ? -1 : 1),
    );
    const resolution: Resolution = {
      admin: matching.map((price) => ({ effectiveFrom: price.effectiveFrom, rates: ratesOf(price) })),
      catalog: provider === null ? null : this.catalogEntry(model, provider),
    };
    if (this.cached >= MAX_CACHED) {
      this.cache.clear();
      this.cached = 0;
      byModel = undefined;
    }
    if (!byModel) {
      byModel = new Map();
      this.cache.set(providerKey, byModel);
    }
    byModel.set(model, resolution);
    this.cached += 1;
    return resolution;
  }

  /** Catalogue look-ups never change at run time, so they survive admin price changes. */
  private catalogEntry(model: string, provider: string | undefined): CatalogEntry | null {
    const key = `${provider ?? ''}\u0000${model}`;
    let entry = this.catalogCache.get(key);
    if (entry === undefined) {
      entry = findCatalogEntry(model, provider);
      if (this.catalogCache.size >= MAX_CACHED) this.catalogCache.clear();
      this.catalogCache.set(key, entry);
    }
    return entry;
  }
}
