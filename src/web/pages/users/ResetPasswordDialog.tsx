import { type FormEvent, useEffect, useRef, useState } from 'react';
import type { AdminUser } from '../../api.ts';

export function ResetPasswordDialog({
  user,
  onClose,
  onSubmit,
}: {
  user: AdminUser | null;
  onClose: () => void;
  onSubmit: (password: string) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [password, setPassword] = useState('');
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (user && !dialog.open) {
      setPassword('');
      dialog.showModal();
    }
    if (!user && dialog.open) dialog.close();
  }, [user]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (password) onSubmit(password);
  };
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="reset-title" onClose={onClose} onCancel={onClose}>
      <form className="form" onSubmit={submit}>
        <h2 id="reset-title">Reset password for {user?.name || user?.email}</h2>
        <div className="field">
          <label htmlFor="reset-password">New password</label>
          <input
            id="reset-password"
            type="password"
            className="input"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <span className="hint">Their current sessions are signed out.</span>
        </div>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={!password}>
            Reset password
          </button>
        </div>
      </form>
    </dialog>
  );
}
