import { type FormEvent, useState } from 'react';

/**
 * The submit handler every sign-in form shares: reads the form's fields, shows the button as busy
 * while `action` runs, and keeps what it threw for `<InlineError>` instead of letting it escape.
 */
export function useFormSubmit(action: (data: FormData) => Promise<void>) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    setBusy(true);
    setError(null);
    try {
      await action(data);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, submit };
}
