import { Gauge } from 'lucide-react';
import type { QuotaStatus } from '../../../shared/limits.ts';
import type { UsageBucket, UsageRange } from '../../api.ts';
import { formatCount, formatTokens } from '../../format.ts';
import { useQuotas } from '../../hooks/useLimits.ts';
import { UsageBar } from './UsageBar.tsx';

const HOURS_PER_BUCKET: Record<UsageRange['period'], number> = { day: 1, week: 24, month: 24, all: 730 };

export function formatHours(hours: number): string {
  if (!Number.isFinite(hours) || hours < 0) return 'N/A';
  if (hours < 1) return '< 1 hour';
  if (hours < 48) return `~${Math.round(hours)} hours`;
  if (hours < 24 * 60) return `~${Math.round(hours / 24)} days`;
  return `~${Math.round(hours / 730)} months`;
}

export interface ForecastItem {
  kind: 'Tokens' | 'Requests';
  current: number;
  max: number;
  /** Hours until the limit is reached at the current rate, or until the window frees (the sooner). */
  hours: number;
  withinLimits: boolean;
}

/**
 * The reference's quota forecast (computeQuotaExhaustion), with its bugs fixed: tokens read
 * `current_total_tokens`, and `resets_at` is real, so "within limits" means the window frees before
 * the current rate reaches the limit. Rates are per hour over the period's buckets.
 */
export function forecastOf(
  quota: QuotaStatus,
  rates: { tokensPerHour: number; requestsPerHour: number },
  now: number,
): ForecastItem[] {
  const untilReset = Math.max(0, (Date.parse(quota.resets_at) - now) / 3_600_000);
  const items: ForecastItem[] = [];
  const add = (kind: ForecastItem['kind'], current: number, max: number | null, rate: number) => {
    if (max === null) return;
    const left = rate > 0 ? (max - current) / rate : Number.POSITIVE_INFINITY;
    items.push({ kind, current, max, hours: Math.min(left, untilReset), withinLimits: left >= untilReset });
  };
  add('Tokens', quota.current_total_tokens, quota.max_total_tokens, rates.tokensPerHour);
  add('Requests', quota.current_requests, quota.max_requests, rates.requestsPerHour);
  return items;
}

/** Shown on the Usage page when the caller has quota rules and the period has at least 2 buckets. */
export function QuotaForecast({
  buckets,
  range,
  bucketCount,
}: {
  buckets: UsageBucket[];
  range: UsageRange;
  bucketCount: number;
}) {
  const quotas = useQuotas(null);
  if (!quotas.data || quotas.data.length === 0 || bucketCount < 2 || (range.from && range.to)) return null;
  const hours = bucketCount * HOURS_PER_BUCKET[range.period];
  const tokens = buckets.reduce((sum, b) => sum + b.total_tokens, 0);
  const requests = buckets.reduce((sum, b) => sum + b.request_count, 0);
  const rates = { tokensPerHour: tokens / hours, requestsPerHour: requests / hours };
  const now = Date.now();
  return (
    <section
      className="card"
      style={{ marginBottom: 24 }}
      aria-labelledby="quota-forecast"
      data-testid="quota-forecast"
    >
      <div className="card-head">
        <h2 id="quota-forecast">
          <Gauge size={16} aria-hidden="true" /> Quota forecast
        </h2>
      </div>
      <div className="limit-panels">
        {quotas.data.map((quota) => (
          <article key={quota.id} className="limit-panel">
            <strong>
              {quota.model || 'All models'} ({quota.window} window)
            </strong>
            {forecastOf(quota, rates, now).map((item) => (
              <div key={item.kind} className="limit-line">
                <div className="row" style={{ justifyContent: 'space-between' }}>
                  <span>{item.kind}</span>
                  <span className="num">
                    {(item.kind === 'Tokens' ? formatTokens : formatCount)(item.current)} /{' '}
                    {(item.kind === 'Tokens' ? formatTokens : formatCount)(item.max)}
                  </span>
                </div>
                <UsageBar used={item.current} max={item.max} tones={false} />
                <span className="hint">
                  {item.withinLimits ? '✓ Within limits' : `⚠ ${formatHours(item.hours)} left`}
                </span>
              </div>
            ))}
          </article>
        ))}
      </div>
    </section>
  );
}
