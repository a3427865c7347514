import { X } from 'lucide-react';
import { useMemo } from 'react';
import type { AdminUser } from '../../api.ts';
import { type ApiKeyActions, ApiKeyList } from '../../components/ApiKeyList.tsx';
import { KeyLimitsSection } from '../../components/limits/KeyLimitsSection.tsx';
import { Empty, ErrorState, Loading } from '../../components/States.tsx';
import { useAdminApiKeys, useAdminRevokeApiKey, useAdminUpdateApiKey } from '../../hooks/useAdminApiKeys.ts';

export function UserKeys({ user, onClose }: { user: AdminUser; onClose: () => void }) {
  const keys = useAdminApiKeys(user.id);
  const revoke = useAdminRevokeApiKey(user.id);
  const update = useAdminUpdateApiKey(user.id);
  const actions = useMemo<ApiKeyActions>(
    () => ({
      update: (id, body) => update.mutateAsync({ id, body }),
      revoke: (id) => revoke.mutateAsync(id),
    }),
    [update.mutateAsync, revoke.mutateAsync],
  );
  const who = user.name || user.email;
  return (
    <>
      <section className="card" aria-labelledby="user-keys-title">
        <div className="card-head">
          <h2 id="user-keys-title">API keys of {who}</h2>
          <button
            type="button"
            className="btn btn-sm btn-ghost btn-icon"
            onClick={onClose}
            aria-label="Close keys"
          >
            <X size={15} aria-hidden="true" />
          </button>
        </div>
        {keys.isPending ? <Loading /> : null}
        {keys.isError ? <ErrorState error={keys.error} onRetry={() => keys.refetch()} /> : null}
        {keys.data && keys.data.length === 0 ? (
          <Empty title="No API keys">This user has not created any key.</Empty>
        ) : null}
        {keys.data && keys.data.length > 0 ? (
          <ApiKeyList
            keys={keys.data}
            caption={`API keys of ${who}`}
            owner={who}
            isAdmin={user.role === 'admin'}
            actions={actions}
          />
        ) : null}
      </section>
      {keys.data?.some((key) => !key.revokedAt) ? (
        <KeyLimitsSection
          userId={user.id}
          names={new Map(keys.data.filter((key) => !key.revokedAt).map((key) => [key.id, key.name]))}
        />
      ) : null}
    </>
  );
}
