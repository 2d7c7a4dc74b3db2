import { useState, type FormEvent } from 'react';
import { messageOf, post } from '../lib/api';
import { Alert, Field } from './ui';

/** Current password + new password twice → POST /api/v1/auths/update/password. */
export function PasswordForm({ hint, onChanged }: { hint?: string; onChanged: (othersRevoked: number) => void }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError('');
    if (next !== confirm) {
      setError('The new passwords do not match.');
      return;
    }
    setBusy(true);
    try {
      const r = await post<{ other_sessions_revoked: number }>('/api/v1/auths/update/password', {
        password: current,
        new_password: next,
      });
      setCurrent('');
      setNext('');
      setConfirm('');
      onChanged(r.other_sessions_revoked ?? 0);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} className="stack narrow">
      <Field
        label="Current password"
        name="current-password"
        type="password"
        autoComplete="current-password"
        required
        value={current}
        onChange={(e) => setCurrent(e.target.value)}
      />
      <Field
        label="New password"
        name="new-password"
        type="password"
        autoComplete="new-password"
        required
        value={next}
        hint={hint || undefined}
        onChange={(e) => setNext(e.target.value)}
      />
      <Field
        label="Confirm new password"
        name="confirm-password"
        type="password"
        autoComplete="new-password"
        required
        value={confirm}
        onChange={(e) => setConfirm(e.target.value)}
      />
      <Alert>{error}</Alert>
      <div className="row">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          Change password
        </button>
      </div>
    </form>
  );
}
