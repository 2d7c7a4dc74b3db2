import { useState, type FormEvent } from 'react';
import { api, messageOf } from '../../lib/api';
import { useSession } from '../../components/session';
import { Alert, ConfirmDialog, Field, PageTitle } from '../../components/ui';

export function PrivacySection() {
  const { me, refresh } = useSession();
  const [password, setPassword] = useState('');
  const [confirmText, setConfirmText] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function erase() {
    setConfirming(false);
    setError('');
    setBusy(true);
    try {
      await api('DELETE', '/api/v1/users/me', password ? { password } : {}, { quietAuth: true });
      await refresh();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    setConfirming(true);
  }

  const impersonating = me.impersonated_by !== null;
  return (
    <>
      <PageTitle>Your data</PageTitle>
      <h2>Export</h2>
      <p>Download everything HridaAI holds about you — profile, chats, files, memories, settings — as one JSON file.</p>
      {impersonating ? (
        <p className="muted">Not available while acting as another user.</p>
      ) : (
        <a className="btn" href="/api/v1/users/me/export" download>
          Download my data
        </a>
      )}
      <h2>Delete your account</h2>
      <p>
        Your account and everything that belongs to it are erased. This cannot be undone; the audit trail keeps a record
        that it happened.
      </p>
      {impersonating ? (
        <p className="muted">Not available while acting as another user.</p>
      ) : (
        <form onSubmit={submit} className="stack narrow">
          <Field
            label="Current password"
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            hint="Accounts that sign in only with single sign-on leave this empty."
            onChange={(e) => setPassword(e.target.value)}
          />
          <Field
            label='Type "delete my account" to confirm'
            name="confirm"
            autoComplete="off"
            value={confirmText}
            onChange={(e) => setConfirmText(e.target.value)}
          />
          <Alert>{error}</Alert>
          <div className="row">
            <button
              type="submit"
              className="btn btn-danger"
              disabled={busy || confirmText.trim().toLowerCase() !== 'delete my account'}
            >
              Delete my account
            </button>
          </div>
        </form>
      )}
      <ConfirmDialog
        open={confirming}
        danger
        title="Delete your account now?"
        confirmLabel="Delete everything"
        onCancel={() => setConfirming(false)}
        onConfirm={() => void erase()}
      >
        {me.email} and all its chats, files and keys are erased at once.
      </ConfirmDialog>
    </>
  );
}
