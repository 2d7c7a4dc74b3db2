import { useId, useState, type FormEvent } from 'react';
import { messageOf, post } from '../lib/api';
import { Alert, Field } from './ui';
import { QrCode } from './QrCode';

/** The ten recovery codes, shown once after enrolment (or regeneration). */
export function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const id = useId();
  const [status, setStatus] = useState('');
  return (
    <section className="panel new-key" aria-labelledby={id}>
      <h2 id={id}>Your recovery codes</h2>
      <p>
        Each code signs you in once if you lose your authenticator. Keep them somewhere safe —{' '}
        <strong>they are not shown again</strong>.
      </p>
      <ul className="codes mono" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}>{c}</li>
        ))}
      </ul>
      <div className="row">
        <button
          type="button"
          className="btn"
          onClick={async () => {
            try {
              await navigator.clipboard.writeText(codes.join('\n'));
              setStatus('Copied to the clipboard.');
            } catch {
              setStatus('Copy them by hand.');
            }
          }}
        >
          Copy codes
        </button>
        <button type="button" className="btn btn-primary" onClick={onDone}>
          I have saved the codes
        </button>
      </div>
      <p className="muted small" role="status">
        {status}
      </p>
    </section>
  );
}

/**
 * Enrolment: re-enter the password, add the secret to an authenticator app (the otpauth link opens
 * one on this device; the secret can be typed in), confirm with a first code.
 */
export function TwoFactorEnrol({ onEnabled }: { onEnabled: (codes: string[]) => void }) {
  const [password, setPassword] = useState('');
  const [setup, setSetup] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function start(e: FormEvent) {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      setSetup(
        await post<{ secret: string; otpauth_uri: string }>('/api/v1/auths/2fa/setup', password ? { password } : {}),
      );
      setPassword('');
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  async function enable(e: FormEvent) {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      const r = await post<{ recovery_codes: string[] }>('/api/v1/auths/2fa/enable', { code: code.trim() });
      onEnabled(r.recovery_codes);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  if (!setup)
    return (
      <form onSubmit={start} className="stack narrow">
        <Field
          label="Current password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          hint="Accounts that sign in only with single sign-on leave this empty."
          onChange={(e) => setPassword(e.target.value)}
        />
        <Alert>{error}</Alert>
        <div className="row">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            Set up two-factor authentication
          </button>
        </div>
      </form>
    );
  return (
    <form onSubmit={enable} className="stack narrow">
      <p>
        Add this account to your authenticator app: scan the code, open the setup link on this device, or type the
        secret key by hand.
      </p>
      <QrCode value={setup.otpauth_uri} label="QR code for your authenticator app" />
      <p>
        <a href={setup.otpauth_uri}>Open the setup link</a>
      </p>
      <Field label="Secret key" name="secret" className="mono" readOnly value={setup.secret} />
      <Field
        label="Code from the app"
        name="code"
        inputMode="numeric"
        autoComplete="one-time-code"
        required
        value={code}
        onChange={(e) => setCode(e.target.value)}
      />
      <Alert>{error}</Alert>
      <div className="row">
        <button type="submit" className="btn btn-primary" disabled={busy || !code.trim()}>
          Turn on
        </button>
      </div>
    </form>
  );
}
