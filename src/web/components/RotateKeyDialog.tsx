import { useEffect, useId, useRef, useState } from 'react';
import type { ApiKey } from '../api.ts';

const GRACE_OPTIONS = [
  ['0', 'At once'],
  ['1h', '1 hour'],
  ['24h', '24 hours'],
  ['7d', '7 days'],
] as const;

/** Confirms a rotation and asks how long the old secret keeps working (default 24 h). */
export function RotateKeyDialog({
  apiKey,
  onConfirm,
  onCancel,
}: {
  apiKey: ApiKey | null;
  onConfirm: (grace: string) => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [grace, setGrace] = useState('24h');
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (apiKey && !dialog.open) {
      setGrace('24h');
      dialog.showModal();
    }
    if (!apiKey && dialog.open) dialog.close();
  }, [apiKey]);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby={titleId} onCancel={onCancel} onClose={onCancel}>
      <h2 id={titleId}>Rotate API key</h2>
      <p>
        Issue a new secret for "{apiKey?.name}"? The key keeps its id, name, scopes, limits and usage history.
        Deploy the new secret before the old one stops working.
      </p>
      <div className="field" style={{ marginBottom: 16 }}>
        <label htmlFor={`${titleId}-grace`}>Old secret keeps working</label>
        <select
          id={`${titleId}-grace`}
          className="select"
          value={grace}
          onChange={(event) => setGrace(event.target.value)}
        >
          {GRACE_OPTIONS.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="btn btn-primary" onClick={() => onConfirm(grace)}>
          Rotate
        </button>
      </div>
    </dialog>
  );
}
