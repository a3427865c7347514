import { Link } from '../../components/Link.tsx';
import { formatUsd } from '../../format.ts';

/**
 * A cost figure with a "no price" marker when some of its requests have no known price (their cost
 * is unknown, not $0). For admins the marker links to the Prices page with the model filled in.
 */
export function CostCell({
  cost,
  unpriced,
  requests,
  model,
  admin,
  strong = false,
}: {
  cost: number;
  unpriced: number;
  requests: number;
  model?: string;
  admin: boolean;
  strong?: boolean;
}) {
  const figure = unpriced === requests && requests > 0 ? null : formatUsd(cost);
  const title = `${unpriced} of ${requests} requests have no known price`;
  const marker =
    unpriced > 0 ? (
      admin && model ? (
        <Link
          href={`/app/prices?model=${encodeURIComponent(model)}`}
          className="badge badge-warning"
          data-testid="no-price"
        >
          <span title={title}>no price</span>
        </Link>
      ) : (
        <span className="badge badge-warning" title={title} data-testid="no-price">
          no price
        </span>
      )
    ) : null;
  return (
    <span className="row" style={{ gap: 6, justifyContent: 'flex-end', flexWrap: 'nowrap' }}>
      {figure === null ? null : strong ? <strong>{figure}</strong> : figure}
      {marker}
    </span>
  );
}
