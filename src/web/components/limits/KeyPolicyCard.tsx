import { type FormEvent, useEffect, useState } from 'react';
import { useLimitPolicy, useSetLimitPolicy } from '../../hooks/useLimits.ts';
import { InlineError } from '../States.tsx';
import { useToast } from '../Toast.tsx';
import { draftOf, EMPTY_DRAFT, type KeyLimitsDraft, KeyLimitsFields, limitsOf } from './KeyLimitsFields.tsx';

/**
 * The admin's policy for API keys: the limits a new key gets when its creator sets none, and the
 * most a user may give one of their keys (admins are not capped).
 */
export function KeyPolicyCard() {
  const policy = useLimitPolicy();
  const save = useSetLimitPolicy();
  const notify = useToast();
  const [defaults, setDefaults] = useState<KeyLimitsDraft>(EMPTY_DRAFT);
  const [maximums, setMaximums] = useState<KeyLimitsDraft>(EMPTY_DRAFT);
  useEffect(() => {
    if (!policy.data) return;
    setDefaults(draftOf(policy.data.defaults));
    setMaximums(draftOf(policy.data.maximums));
  }, [policy.data]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate(
      { defaults: limitsOf(defaults), maximums: limitsOf(maximums) },
      { onSuccess: () => notify('Key limit policy saved') },
    );
  };
  return (
    <section className="card" aria-labelledby="key-policy-title">
      <form className="form" onSubmit={submit}>
        <div className="card-head">
          <div>
            <h2 id="key-policy-title">Limits for new API keys</h2>
            <p>
              Defaults apply to keys created without limits; users cannot set their keys above the maximums.
            </p>
          </div>
        </div>
        <h3>Defaults</h3>
        <KeyLimitsFields idPrefix="policy-defaults" draft={defaults} onChange={setDefaults} />
        <h3>Maximums for users</h3>
        <KeyLimitsFields idPrefix="policy-maximums" draft={maximums} onChange={setMaximums} />
        <InlineError error={save.error} />
        <div>
          <button type="submit" className="btn btn-primary" disabled={save.isPending || policy.isPending}>
            Save policy
          </button>
        </div>
      </form>
    </section>
  );
}
