import { X } from 'lucide-react';
import { ClientSetupHint } from './ClientSetupHint.tsx';
import { CopyButton } from './CopyButton.tsx';

/** A secret shown once (a new or rotated API key), with copy and dismiss. */
export function NewSecret({
  secret,
  title,
  note,
  onDismiss,
}: {
  secret: string;
  title: string;
  note?: string;
  onDismiss: () => void;
}) {
  return (
    <div className="alert alert-warning" role="status" style={{ marginTop: 16, flexDirection: 'column' }}>
      <div className="row" style={{ width: '100%' }}>
        <strong>{title}</strong>
        <span className="spacer" />
        <button
          type="button"
          className="btn btn-sm btn-ghost btn-icon"
          onClick={onDismiss}
          aria-label="Dismiss"
        >
          <X size={14} aria-hidden="true" />
        </button>
      </div>
      <div className="secret" style={{ width: '100%' }}>
        <code data-testid="new-key">{secret}</code>
        <CopyButton text={secret} />
      </div>
      {note ? <p className="hint">{note}</p> : null}
      <ClientSetupHint origin={window.location.origin} />
    </div>
  );
}
