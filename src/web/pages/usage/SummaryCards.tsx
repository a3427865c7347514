import { TrendingUp } from 'lucide-react';
import type { UsageTotals } from '../../api.ts';
import {
  formatChange,
  formatCount,
  formatMeasure,
  formatTokens,
  formatUsd,
  type Measure,
} from '../../format.ts';

export interface CardTotals {
  requests: number;
  prompt: number;
  completion: number;
  total: number;
  /** USD of the priced requests, and how many requests have no known price. */
  cost: number;
  unpriced: number;
}

export interface Projection {
  /** e.g. "next 30 days"; null when the view has no projection (custom ranges). */
  label: string | null;
  /** Projected tokens, or null when there is not enough data for a trend. */
  value: number | null;
}

/**
 * The summary cards of a usage view: requests and tokens with their change against the previous
 * period of the same length (when known), and the projection.
 */
export function SummaryCards({
  totals,
  previous,
  projection,
  compareLabel,
  measure = 'tokens',
}: {
  measure?: Measure;
  totals: CardTotals;
  /** Totals of the previous period; undefined hides the change (e.g. while drilled in). */
  previous?: UsageTotals | null;
  projection: Projection;
  compareLabel: string;
}) {
  const cards =
    measure === 'cost'
      ? ([
          ['Requests', formatCount(totals.requests), 'requests', totals.requests, previous?.request_count],
          [
            'Priced requests',
            formatCount(totals.requests - totals.unpriced),
            'priced',
            totals.requests - totals.unpriced,
            previous ? previous.request_count - previous.unpriced_requests : undefined,
          ],
          [
            'Requests without a price',
            formatCount(totals.unpriced),
            'unpriced',
            totals.unpriced,
            previous?.unpriced_requests,
          ],
          ['Total cost', formatUsd(totals.cost), 'total', totals.cost, previous?.cost],
        ] as const)
      : ([
          ['Requests', formatCount(totals.requests), 'requests', totals.requests, previous?.request_count],
          ['Prompt tokens', formatTokens(totals.prompt), 'prompt', totals.prompt, previous?.prompt_tokens],
          [
            'Completion tokens',
            formatTokens(totals.completion),
            'completion',
            totals.completion,
            previous?.completion_tokens,
          ],
          ['Total tokens', formatTokens(totals.total), 'total', totals.total, previous?.total_tokens],
        ] as const);
  const formatBefore = (id: string, value: number) =>
    id === 'total'
      ? formatMeasure(measure, value)
      : id === 'prompt' || id === 'completion'
        ? formatTokens(value)
        : formatCount(value);
  return (
    <div className="cards">
      {cards.map(([label, value, id, current, before]) => {
        const change = previous === undefined ? null : formatChange(current, before);
        return (
          <div key={id} className="card stat" data-testid={`stat-${id}`}>
            <div className="label">{label}</div>
            <div className="value">{value}</div>
            {change ? (
              <div
                className={`sub change ${change.startsWith('+') || change === 'new' ? 'up' : change.startsWith('−') ? 'down' : ''}`}
                data-testid={`change-${id}`}
                title={`${compareLabel}: ${formatBefore(id, before ?? 0)}`}
              >
                {change} <span className="muted">{compareLabel}</span>
              </div>
            ) : null}
          </div>
        );
      })}
      <div className="card stat" data-testid="stat-projection">
        <div className="label row" style={{ gap: 6 }}>
          <TrendingUp size={14} aria-hidden="true" /> Projected {measure === 'cost' ? 'cost ' : ''}
          {projection.label ?? ''}
        </div>
        {projection.label && projection.value !== null ? (
          <>
            <div className="value">~{formatMeasure(measure, projection.value)}</div>
            <div className="sub">
              {measure === 'cost' ? 'of priced usage' : 'tokens'}, from this period's trend
            </div>
          </>
        ) : (
          <div className="sub" style={{ marginTop: 8 }}>
            {projection.label ? 'Not enough data for a trend' : 'Shown for Day / Week / Month / All'}
          </div>
        )}
      </div>
    </div>
  );
}
