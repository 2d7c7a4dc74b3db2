import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { get, messageOf, post } from '../../lib/api';
import { formatTime } from '../../lib/format';
import type { TwoFactorStatus } from '../../lib/types';
import { RecoveryCodes, TwoFactorEnrol } from '../../components/TwoFactor';
import { Alert, Field, PageTitle, Spinner } from '../../components/ui';

export function TwoFactorSection() {
  const [status, setStatus] = useState<TwoFactorStatus | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [regenCode, setRegenCode] = useState('');

  const load = useCallback(async () => {
    try {
      setStatus(await get<TwoFactorStatus>('/api/v1/auths/2fa'));
    } catch (e) {
      setError(messageOf(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function disable(e: FormEvent) {
    e.preventDefault();
    setError('');
    setInfo('');
    setBusy(true);
    try {
      const c = code.trim();
      await post('/api/v1/auths/2fa/disable', {
        ...(password ? { password } : {}),
        ...(/^\d{6,8}$/.test(c) ? { code: c } : { recovery_code: c }),
      });
      setPassword('');
      setCode('');
      setInfo('Two-factor authentication is off.');
      await load();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  async function regenerate(e: FormEvent) {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      const r = await post<{ recovery_codes: string[] }>('/api/v1/auths/2fa/recovery-codes', {
        code: regenCode.trim(),
      });
      setRegenCode('');
      setCodes(r.recovery_codes);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <PageTitle>Two-factor authentication</PageTitle>
      <p>A code from an authenticator app is asked for at every sign-in, after your password.</p>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {codes ? (
        <RecoveryCodes
          codes={codes}
          onDone={() => {
            setCodes(null);
            void load();
          }}
        />
      ) : null}
      {status === null ? (
        <Spinner label="Loading" />
      ) : !status.enabled ? (
        codes ? null : (
          <TwoFactorEnrol
            onEnabled={(c) => {
              setCodes(c);
              setInfo('Two-factor authentication is on.');
            }}
          />
        )
      ) : (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <span className="badge badge-ok">On</span> since {formatTime(status.enabled_at)}
            </dd>
            <dt>Recovery codes left</dt>
            <dd>{status.recovery_codes_remaining}</dd>
          </dl>
          <h2>New recovery codes</h2>
          <form onSubmit={regenerate} className="stack narrow">
            <Field
              label="Code from the app"
              name="regen-code"
              inputMode="numeric"
              autoComplete="one-time-code"
              required
              value={regenCode}
              onChange={(e) => setRegenCode(e.target.value)}
            />
            <div className="row">
              <button type="submit" className="btn" disabled={busy || !regenCode.trim()}>
                Replace recovery codes
              </button>
            </div>
          </form>
          <h2>Turn off</h2>
          <form onSubmit={disable} className="stack narrow">
            <Field
              label="Current password"
              name="password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
            <Field
              label="Code from the app or a recovery code"
              name="code"
              autoComplete="one-time-code"
              required
              value={code}
              onChange={(e) => setCode(e.target.value)}
            />
            <div className="row">
              <button type="submit" className="btn btn-danger-outline" disabled={busy || !code.trim()}>
                Turn off two-factor authentication
              </button>
            </div>
          </form>
        </>
      )}
    </>
  );
}
