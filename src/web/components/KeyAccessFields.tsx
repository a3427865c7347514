import { useId } from 'react';
import { KEY_SCOPES, type KeyScope, SCOPE_LABELS } from '../../shared/access.ts';

/** The editable access of a key: scopes, model allowlist, IP allowlist (one text per list). */
export interface KeyAccessDraft {
  scopes: KeyScope[];
  /** Comma- or newline-separated; blank: no restriction. */
  models: string;
  ips: string;
}

export const DEFAULT_ACCESS_DRAFT: KeyAccessDraft = { scopes: ['inference', 'usage'], models: '', ips: '' };

/** Blank → null (no restriction); otherwise the trimmed entries. */
export function listOf(text: string): string[] | null {
  const entries = text
    .split(/[\n,]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  return entries.length === 0 ? null : entries;
}

export function accessBody(draft: KeyAccessDraft) {
  return { scopes: draft.scopes, allowedModels: listOf(draft.models), allowedIps: listOf(draft.ips) };
}

export function KeyAccessFields({
  draft,
  onChange,
  isAdmin,
}: {
  draft: KeyAccessDraft;
  onChange: (next: KeyAccessDraft) => void;
  isAdmin: boolean;
}) {
  const id = useId();
  const offered = KEY_SCOPES.filter((scope) => scope !== 'admin' || isAdmin);
  const toggle = (scope: KeyScope, on: boolean) =>
    onChange({
      ...draft,
      scopes: on ? [...draft.scopes, scope] : draft.scopes.filter((given) => given !== scope),
    });
  return (
    <div className="stack" style={{ gap: 12 }}>
      <fieldset className="field" style={{ border: 0, padding: 0, margin: 0 }}>
        <legend className="small" style={{ fontWeight: 600, marginBottom: 6 }}>
          Scopes
        </legend>
        <div className="row" style={{ gap: 16, flexWrap: 'wrap' }}>
          {offered.map((scope) => (
            <label key={scope} className="checkbox">
              <input
                type="checkbox"
                checked={draft.scopes.includes(scope)}
                onChange={(event) => toggle(scope, event.target.checked)}
              />
              <span>{SCOPE_LABELS[scope]}</span>
            </label>
          ))}
        </div>
      </fieldset>
      <div className="row" style={{ gap: 12, alignItems: 'flex-start', flexWrap: 'wrap' }}>
        <div className="field" style={{ flex: '1 1 220px' }}>
          <label htmlFor={`${id}-models`}>Allowed models</label>
          <input
            id={`${id}-models`}
            className="input"
            placeholder="all models (e.g. gpt-4o*, llama3)"
            value={draft.models}
            onChange={(event) => onChange({ ...draft, models: event.target.value })}
          />
          <span className="hint">Names or globs, comma-separated; blank allows every model you may use.</span>
        </div>
        <div className="field" style={{ flex: '1 1 220px' }}>
          <label htmlFor={`${id}-ips`}>Allowed addresses</label>
          <input
            id={`${id}-ips`}
            className="input"
            placeholder="anywhere (e.g. 10.1.0.0/16, 2001:db8::/32)"
            value={draft.ips}
            onChange={(event) => onChange({ ...draft, ips: event.target.value })}
          />
          <span className="hint">IPv4 or IPv6 CIDRs, comma-separated; blank allows any address.</span>
        </div>
      </div>
    </div>
  );
}
