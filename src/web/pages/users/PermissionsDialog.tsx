import { type FormEvent, useEffect, useId, useRef, useState } from 'react';
import { FEATURE_GROUPS, type FeatureGroup } from '../../../shared/access.ts';
import type { AdminUser, PermissionMap } from '../../api.ts';
import { InlineError, Loading } from '../../components/States.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFeatures, useSavePermissions, useUserPermissions } from '../../hooks/usePermissions.ts';

/**
 * The admin Users page's permissions modal, as in LocalAI (reference section 2.8): per-group
 * feature toggles with All/None, and the model allowlist. Saving sends the full map, so every key
 * becomes explicitly stored; keytally gates `chat` and `embeddings` (the routes it serves).
 */

const GROUP_TITLES: Record<FeatureGroup, string> = {
  api_features: 'API Endpoints',
  agent_features: 'Agent Features',
  general_features: 'Features (General)',
};
const GROUP_ORDER: FeatureGroup[] = ['api_features', 'agent_features', 'general_features'];
const SHORT: Record<FeatureGroup, string> = {
  api_features: 'API',
  agent_features: 'Agent',
  general_features: 'Features',
};

/** "All (admin)", or "N/22 API, N/5 Agent, N/2 Features" from the server's effective map. */
export function permissionSummary(user: AdminUser): string {
  if (user.role === 'admin') return 'All (admin)';
  const parts = GROUP_ORDER.map((group) => {
    const keys = FEATURE_GROUPS[group].map(([key]) => key);
    const on = keys.filter((key) => user.permissions[key] === true).length;
    return `${on}/${keys.length} ${SHORT[group]}`;
  });
  return `${parts.join(', ')}${user.allowed_models.enabled ? ' | Models restricted' : ''}`;
}

export function PermissionsDialog({ user, onClose }: { user: AdminUser | null; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (user && !dialog.open) dialog.showModal();
    if (!user && dialog.open) dialog.close();
  }, [user]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      style={{ width: 'min(760px, calc(100vw - 32px))' }}
      aria-labelledby={titleId}
      onClose={onClose}
      onCancel={onClose}
    >
      {user ? <PermissionsForm key={user.id} user={user} titleId={titleId} onClose={onClose} /> : null}
    </dialog>
  );
}

function PermissionsForm({
  user,
  titleId,
  onClose,
}: {
  user: AdminUser;
  titleId: string;
  onClose: () => void;
}) {
  const features = useFeatures();
  const permissions = useUserPermissions(user.id);
  const save = useSavePermissions();
  const notify = useToast();
  const [map, setMap] = useState<PermissionMap | null>(null);
  const [restricted, setRestricted] = useState(user.allowed_models.enabled);
  const [models, setModels] = useState<string[]>(user.allowed_models.models ?? []);
  useEffect(() => {
    if (permissions.data && map === null) setMap(permissions.data);
  }, [permissions.data, map]);
  const admin = user.role === 'admin';
  const who = user.name || user.email;
  const known = [...new Set([...(features.data?.models ?? []), ...models])].sort();

  const setGroup = (group: FeatureGroup, on: boolean) =>
    setMap((current) => {
      const next = { ...(current ?? {}) };
      for (const [key] of FEATURE_GROUPS[group]) next[key] = on;
      return next;
    });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!map) return;
    save.mutate(
      { id: user.id, permissions: map, models: restricted ? { enabled: true, models } : { enabled: false } },
      {
        onSuccess: () => {
          notify(`Permissions of ${who} saved`);
          onClose();
        },
      },
    );
  };

  return (
    <form className="form" onSubmit={submit}>
      <h2 id={titleId}>Permissions for “{who}”</h2>
      {admin ? (
        <p>Admins have every permission and can use every model; changes here have no effect.</p>
      ) : null}
      {features.isPending || permissions.isPending || !map ? <Loading /> : null}
      {map
        ? GROUP_ORDER.map((group) => (
            <fieldset key={group} style={{ border: 0, padding: 0, margin: '0 0 12px' }} disabled={admin}>
              <legend style={{ fontWeight: 600 }}>{GROUP_TITLES[group]}</legend>
              <div className="row" style={{ alignItems: 'center', gap: 8 }}>
                <button
                  type="button"
                  className="btn btn-sm btn-ghost"
                  aria-label={`All of ${GROUP_TITLES[group]}`}
                  onClick={() => setGroup(group, true)}
                >
                  All
                </button>
                <button
                  type="button"
                  className="btn btn-sm btn-ghost"
                  aria-label={`None of ${GROUP_TITLES[group]}`}
                  onClick={() => setGroup(group, false)}
                >
                  None
                </button>
              </div>
              <div className="row" style={{ flexWrap: 'wrap', gap: '4px 16px' }}>
                {FEATURE_GROUPS[group].map(([key, label]) => (
                  <label key={key} className="checkbox">
                    <input
                      type="checkbox"
                      checked={map[key] === true}
                      onChange={(event) => setMap({ ...map, [key]: event.target.checked })}
                    />
                    <span>{label}</span>
                  </label>
                ))}
              </div>
            </fieldset>
          ))
        : null}
      <fieldset style={{ border: 0, padding: 0, margin: '0 0 12px' }} disabled={admin}>
        <legend style={{ fontWeight: 600 }}>Model Access</legend>
        <label className="checkbox">
          <input
            type="checkbox"
            checked={restricted}
            onChange={(event) => setRestricted(event.target.checked)}
          />
          <span>Restrict to specific models</span>
        </label>
        {!restricted ? <p className="hint">All models are accessible</p> : null}
        {restricted && known.length === 0 ? <p className="hint">No models available</p> : null}
        {restricted && known.length > 0 ? (
          <>
            <div className="row" style={{ gap: 8 }}>
              <button type="button" className="btn btn-sm btn-ghost" onClick={() => setModels(known)}>
                All
              </button>
              <button type="button" className="btn btn-sm btn-ghost" onClick={() => setModels([])}>
                None
              </button>
            </div>
            <div className="row" style={{ flexWrap: 'wrap', gap: '4px 16px' }}>
              {known.map((model) => (
                <label key={model} className="checkbox">
                  <input
                    type="checkbox"
                    checked={models.includes(model)}
                    onChange={(event) =>
                      setModels(event.target.checked ? [...models, model] : models.filter((m) => m !== model))
                    }
                  />
                  <span>{model}</span>
                </label>
              ))}
            </div>
          </>
        ) : null}
      </fieldset>
      <InlineError error={save.error} />
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={admin || !map || save.isPending}>
          Save
        </button>
      </div>
    </form>
  );
}
