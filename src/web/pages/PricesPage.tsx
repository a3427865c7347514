import { Plus, Trash2 } from 'lucide-react';
import { type FormEvent, useEffect, useState } from 'react';
import type { PriceDto, PriceInput } from '../../shared/cost.ts';
import { ErrorState, InlineError, Loading } from '../components/States.tsx';
import { formatDateTime } from '../format.ts';
import { usePriceAction, usePrices } from '../hooks/usePrices.ts';
import { useQueryState } from '../router.ts';

/** USD per million tokens, as typed; '' when optional and left empty. */
const PRICE_FIELDS = [
  ['input', 'Input', true],
  ['output', 'Output', true],
  ['cached_input', 'Cached input', false],
  ['cache_write', 'Cache write', false],
] as const;
type PriceField = (typeof PRICE_FIELDS)[number][0];

function perMillion(value: number | null): string {
  return value === null ? '—' : `$${value.toLocaleString('en-US', { maximumFractionDigits: 6 })}`;
}

/**
 * Admin prices (decisions.md section 8): per model name or glob, USD per million tokens, versioned by
 * effective time. They win over the bundled catalogue; models with traffic but no price are listed
 * with a shortcut to price them.
 */
export function PricesPage() {
  const prices = usePrices();
  const action = usePriceAction();
  const [query, setQuery] = useQueryState();
  const [model, setModel] = useState(query.get('model') ?? '');
  const [values, setValues] = useState<Record<PriceField, string>>({
    input: '',
    output: '',
    cached_input: '',
    cache_write: '',
  });
  const [effective, setEffective] = useState('');

  useEffect(() => {
    const wanted = query.get('model');
    if (wanted) setModel(wanted);
  }, [query]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const price: PriceInput = {
      model: model.trim(),
      input: Number(values.input),
      output: Number(values.output),
    };
    if (values.cached_input !== '') price.cached_input = Number(values.cached_input);
    if (values.cache_write !== '') price.cache_write = Number(values.cache_write);
    if (effective) price.effective_from = new Date(effective).toISOString();
    action.mutate(
      { kind: 'add', price },
      {
        onSuccess: () => {
          setModel('');
          setValues({ input: '', output: '', cached_input: '', cache_write: '' });
          setEffective('');
          setQuery({ model: null });
        },
      },
    );
  };

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Prices</h1>
          <p>
            USD per million tokens. Your prices win over the bundled catalogue; a new price applies to
            requests from its effective time on (run <code>keytally usage reprice</code> to recompute earlier
            ones).
          </p>
        </div>
      </div>
      <div className="stack">
        {prices.data && prices.data.unpriced_models.length > 0 ? (
          <section className="card" aria-labelledby="unpriced-title" data-testid="unpriced-models">
            <div className="card-head">
              <h2 id="unpriced-title">Models without a price</h2>
            </div>
            <p className="small muted">
              Requests to these models in the last 30 days had no known cost, and no price covers them yet.
            </p>
            <div className="row" style={{ gap: 8, flexWrap: 'wrap' }}>
              {prices.data.unpriced_models.map((name) => (
                <button key={name} type="button" className="btn btn-sm" onClick={() => setModel(name)}>
                  Set a price for {name}
                </button>
              ))}
            </div>
          </section>
        ) : null}
        <section className="card" aria-labelledby="add-price-title">
          <div className="card-head">
            <h2 id="add-price-title">Add a price</h2>
          </div>
          <form
            className="row"
            onSubmit={submit}
            style={{ alignItems: 'flex-end', gap: 12, flexWrap: 'wrap' }}
          >
            <div className="field" style={{ flex: '1 1 200px' }}>
              <label htmlFor="price-model">Model (name or glob, e.g. llama3*)</label>
              <input
                id="price-model"
                className="input"
                maxLength={255}
                value={model}
                onChange={(e) => setModel(e.target.value)}
              />
            </div>
            {PRICE_FIELDS.map(([field, label, required]) => (
              <div key={field} className="field" style={{ flex: '0 1 130px' }}>
                <label htmlFor={`price-${field}`}>
                  {label}
                  {required ? '' : ' (optional)'}
                </label>
                <input
                  id={`price-${field}`}
                  className="input"
                  type="number"
                  min={0}
                  step="any"
                  required={required}
                  value={values[field]}
                  onChange={(e) => setValues({ ...values, [field]: e.target.value })}
                />
              </div>
            ))}
            <div className="field" style={{ flex: '0 1 210px' }}>
              <label htmlFor="price-effective">Effective from (default now)</label>
              <input
                id="price-effective"
                className="input"
                type="datetime-local"
                value={effective}
                onChange={(e) => setEffective(e.target.value)}
              />
            </div>
            <button
              type="submit"
              className="btn btn-primary"
              disabled={!model.trim() || values.input === '' || values.output === '' || action.isPending}
            >
              <Plus size={16} aria-hidden="true" />
              Add price
            </button>
          </form>
          {action.isError ? (
            <div style={{ marginTop: 12 }}>
              <InlineError error={action.error} />
            </div>
          ) : null}
        </section>
        <section className="card" aria-labelledby="prices-title">
          <div className="card-head">
            <h2 id="prices-title">Price list</h2>
          </div>
          {prices.isPending ? <Loading label="Loading prices…" /> : null}
          {prices.isError ? <ErrorState error={prices.error} onRetry={() => prices.refetch()} /> : null}
          {prices.data ? (
            <PriceTable
              prices={prices.data.prices}
              onDelete={(id) => action.mutate({ kind: 'delete', id })}
            />
          ) : null}
        </section>
      </div>
    </>
  );
}

function PriceTable({ prices, onDelete }: { prices: PriceDto[]; onDelete: (id: string) => void }) {
  if (prices.length === 0) {
    return (
      <p className="small muted">No admin prices yet: well-known models are priced from the catalogue.</p>
    );
  }
  return (
    <div className="table-wrap">
      <table className="table">
        <caption className="sr-only">Admin prices</caption>
        <thead>
          <tr>
            <th>Model</th>
            <th className="num">Input</th>
            <th className="num">Output</th>
            <th className="num">Cached input</th>
            <th className="num">Cache write</th>
            <th>Effective from</th>
            <th>Source</th>
            <th>
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {prices.map((price) => (
            <tr key={price.id} data-testid="price-row">
              <td>
                <strong>{price.model}</strong>
              </td>
              <td className="num">{perMillion(price.input)}</td>
              <td className="num">{perMillion(price.output)}</td>
              <td className="num">{perMillion(price.cached_input)}</td>
              <td className="num">{perMillion(price.cache_write)}</td>
              <td>
                {price.effective_from.startsWith('1970-') ? 'always' : formatDateTime(price.effective_from)}
              </td>
              <td>{price.origin === 'config' ? 'config file' : 'dashboard / API'}</td>
              <td>
                {price.origin === 'api' ? (
                  <button
                    type="button"
                    className="btn btn-sm"
                    aria-label={`Delete the price of ${price.model}`}
                    onClick={() => onDelete(price.id)}
                  >
                    <Trash2 size={14} aria-hidden="true" />
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
