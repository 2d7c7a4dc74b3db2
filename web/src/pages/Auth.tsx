import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, get, messageOf, post } from '../lib/api';
import type { Me, PublicConfig, TwoFactorChallenge, User } from '../lib/types';
import { PasswordForm } from '../components/PasswordForm';
import { RecoveryCodes, TwoFactorEnrol } from '../components/TwoFactor';
import { Alert, Field, ThemeToggle } from '../components/ui';

function AuthFrame({ title, children }: { title: string; children: ReactNode }) {
  return (
    <div className="auth-page">
      <div className="auth-top">
        <ThemeToggle />
      </div>
      <main id="main" className="auth-card">
        <p className="brand brand-large" aria-hidden="true">
          <span className="brand-mark" /> HridaAI
        </p>
        <h1 className="page-title" tabIndex={-1}>
          {title}
        </h1>
        {children}
      </main>
    </div>
  );
}

interface AuthResponse {
  user: User;
}

type SignInResponse = AuthResponse | TwoFactorChallenge;

const OAUTH_ERRORS: Record<string, string> = {
  account_pending: 'Your account is waiting for approval by an administrator.',
  account_inactive: 'This account is deactivated.',
  signup_disabled: 'There is no account for you here, and new accounts cannot be created with single sign-on.',
};

/** `/?oauth_error=<code>` after a failed single sign-on: read it once and clean the address. */
function readOauthError(): string {
  const params = new URLSearchParams(window.location.search);
  const code = params.get('oauth_error');
  if (!code) return '';
  params.delete('oauth_error');
  const rest = params.toString();
  window.history.replaceState(null, '', window.location.pathname + (rest ? `?${rest}` : ''));
  return OAUTH_ERRORS[code] ?? `Single sign-on did not succeed (${code.replace(/[^a-z0-9_]/gi, '').slice(0, 60)}).`;
}

/** Fresh instance: the first account becomes the administrator. */
export function Onboarding({ config, onDone }: { config: PublicConfig; onDone: () => void }) {
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError('');
    if (password !== confirm) {
      setError('The two passwords do not match.');
      return;
    }
    setBusy(true);
    try {
      // The response carries the token for API clients; the UI ignores it (the cookie is the session).
      await post<AuthResponse>('/api/v1/auths/signup', { name, email, password }, { quietAuth: true });
      onDone();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthFrame title="Set up HridaAI">
      <p className="lead">Create the administrator account. It manages users, models and settings for this instance.</p>
      <form onSubmit={submit} className="stack" noValidate={false}>
        <Field
          label="Name"
          name="name"
          autoComplete="name"
          required
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <Field
          label="E-mail"
          name="email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          required
          value={password}
          hint={config.password_hint || undefined}
          onChange={(e) => setPassword(e.target.value)}
        />
        <Field
          label="Confirm password"
          name="confirm"
          type="password"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
        />
        <Alert>{error}</Alert>
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Creating…' : 'Create administrator account'}
        </button>
      </form>
    </AuthFrame>
  );
}

/** Password sign-in, and sign-up when the server allows it. */
export function SignIn({
  config,
  notice,
  initialEmail,
  onSignedIn,
}: {
  config: PublicConfig;
  notice?: string;
  initialEmail?: string;
  onSignedIn: () => void;
}) {
  const [mode, setMode] = useState<'signin' | 'signup' | 'ldap'>(() =>
    !(config.features.enable_login_form && config.features.enable_password_auth) && config.ldap ? 'ldap' : 'signin',
  );
  const [oauthError] = useState(() => readOauthError());
  const [name, setName] = useState('');
  const [email, setEmail] = useState(initialEmail ?? '');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [challenge, setChallenge] = useState<TwoFactorChallenge | null>(null);
  const passwordRef = useRef<HTMLInputElement>(null);
  const { enable_login_form, enable_password_auth, enable_signup } = config.features;
  const formEnabled = enable_login_form && enable_password_auth;

  useEffect(() => {
    if (initialEmail) passwordRef.current?.focus();
  }, [initialEmail]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      if (mode === 'signup')
        await post<AuthResponse>('/api/v1/auths/signup', { name, email, password }, { quietAuth: true });
      else {
        const r =
          mode === 'ldap'
            ? await post<SignInResponse>('/api/v1/auths/ldap', { user: email, password }, { quietAuth: true })
            : await post<SignInResponse>('/api/v1/auths/signin', { email, password }, { quietAuth: true });
        setPassword('');
        if ('two_factor_required' in r && r.two_factor_required) {
          setChallenge(r);
          return;
        }
      }
      setPassword('');
      onSignedIn();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  if (challenge)
    return (
      <SecondFactor
        challenge={challenge}
        onDone={onSignedIn}
        onRestart={() => {
          setChallenge(null);
          setError('');
        }}
      />
    );

  const title = mode === 'signup' ? 'Create an account' : 'Sign in';
  const providers = config.oauth_providers ?? [];
  const ldap = config.ldap ?? null;
  return (
    <AuthFrame title={title}>
      <Alert kind="info">{notice}</Alert>
      <Alert>{oauthError}</Alert>
      {providers.length && mode !== 'signup' ? (
        <div className="stack tight sso">
          {providers.map((p) => (
            <a key={p.id} className="btn btn-block" href={p.login_url}>
              Continue with {p.name}
            </a>
          ))}
        </div>
      ) : null}
      {ldap && mode !== 'signup' ? (
        <div className="segmented" role="group" aria-label="Sign-in method">
          <button
            type="button"
            aria-pressed={mode === 'signin'}
            onClick={() => setMode('signin')}
            disabled={!formEnabled}
          >
            E-mail
          </button>
          <button type="button" aria-pressed={mode === 'ldap'} onClick={() => setMode('ldap')}>
            {ldap.label}
          </button>
        </div>
      ) : null}
      {formEnabled || mode === 'ldap' ? (
        <form onSubmit={submit} className="stack">
          {mode === 'signup' ? (
            <Field
              label="Name"
              name="name"
              autoComplete="name"
              required
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          ) : null}
          <Field
            key={mode === 'ldap' ? 'ldap-user' : 'email'}
            label={mode === 'ldap' ? 'User name' : 'E-mail'}
            name={mode === 'ldap' ? 'username' : 'email'}
            type={mode === 'ldap' ? 'text' : 'email'}
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
          <Field
            ref={passwordRef}
            label="Password"
            name="password"
            type="password"
            autoComplete={mode === 'signup' ? 'new-password' : 'current-password'}
            required
            value={password}
            hint={mode === 'signup' && config.password_hint ? config.password_hint : undefined}
            onChange={(e) => setPassword(e.target.value)}
          />
          <Alert>{error}</Alert>
          <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
            {busy ? 'Please wait…' : mode === 'signup' ? 'Create account' : 'Sign in'}
          </button>
        </form>
      ) : ldap ? null : (
        <p className="lead">
          {providers.length
            ? 'Sign in with your organisation’s single sign-on.'
            : 'Password sign-in is turned off on this server. Ask an administrator for access.'}
        </p>
      )}
      {formEnabled && enable_signup && mode !== 'ldap' ? (
        <p className="switch-mode">
          {mode === 'signin' ? 'No account yet?' : 'Already have an account?'}{' '}
          <button
            type="button"
            className="link-btn"
            onClick={() => {
              setError('');
              setMode(mode === 'signin' ? 'signup' : 'signin');
            }}
          >
            {mode === 'signin' ? 'Create one' : 'Sign in'}
          </button>
        </p>
      ) : null}
    </AuthFrame>
  );
}

/**
 * A pending account can only wait. The screen checks its status now and then: approval changes the
 * role, which ends every session of the account, so a 401 here means "reviewed — sign in again".
 */
export function Pending({
  me,
  onReviewed,
  onSignOut,
}: {
  me: Me;
  /** `signedIn` is false when the review ended the session (the usual case). */
  onReviewed: (email: string, signedIn: boolean) => void;
  onSignOut: () => void;
}) {
  const [checking, setChecking] = useState(false);
  const [status, setStatus] = useState('');

  async function check(manual: boolean) {
    setChecking(true);
    try {
      const now = await get<Me>('/api/v1/auths/', { quietAuth: true });
      if (now.role !== 'pending') onReviewed(now.email, true);
      else if (manual) setStatus(`Still waiting for approval (checked ${new Date().toLocaleTimeString()}).`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onReviewed(me.email, false);
      else if (manual) setStatus(messageOf(err));
    } finally {
      setChecking(false);
    }
  }

  useEffect(() => {
    const t = window.setInterval(() => void check(false), 10_000);
    return () => window.clearInterval(t);
  }, []);

  return (
    <AuthFrame title="Waiting for approval">
      <p className="lead">
        Your account <strong>{me.email}</strong> has been created. An administrator needs to approve it before you can
        use HridaAI.
      </p>
      <p>This page checks again on its own. Once you are approved you will be asked to sign in again.</p>
      <Alert kind="info">{status}</Alert>
      <div className="row">
        <button type="button" className="btn btn-primary" onClick={() => void check(true)} disabled={checking}>
          {checking ? 'Checking…' : 'Check again'}
        </button>
        <button type="button" className="btn" onClick={onSignOut}>
          Sign out
        </button>
      </div>
    </AuthFrame>
  );
}

/** The second step of a sign-in with 2FA: a code from the app, or a recovery code. */
function SecondFactor({
  challenge,
  onDone,
  onRestart,
}: {
  challenge: TwoFactorChallenge;
  onDone: () => void;
  onRestart: () => void;
}) {
  const [useRecovery, setUseRecovery] = useState(false);
  const [code, setCode] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      // The challenge token lives in this component's state only, for the few minutes it is valid.
      await post(
        '/api/v1/auths/2fa/verify',
        useRecovery
          ? { challenge_token: challenge.challenge_token, recovery_code: code.trim() }
          : { challenge_token: challenge.challenge_token, code: code.trim() },
        { quietAuth: true },
      );
      onDone();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthFrame title="Two-step verification">
      <form onSubmit={submit} className="stack">
        <Field
          key={useRecovery ? 'recovery' : 'code'}
          label={useRecovery ? 'Recovery code' : 'Code from your authenticator app'}
          name="code"
          autoComplete="one-time-code"
          inputMode={useRecovery ? 'text' : 'numeric'}
          autoFocus
          required
          value={code}
          onChange={(e) => setCode(e.target.value)}
        />
        <Alert>{error}</Alert>
        <button type="submit" className="btn btn-primary btn-block" disabled={busy || !code.trim()}>
          Verify
        </button>
      </form>
      <p className="switch-mode">
        {challenge.methods.includes('recovery_code') ? (
          <button
            type="button"
            className="link-btn"
            onClick={() => {
              setUseRecovery(!useRecovery);
              setCode('');
            }}
          >
            {useRecovery ? 'Use a code from the app' : 'Use a recovery code'}
          </button>
        ) : null}{' '}
        ·{' '}
        <button type="button" className="link-btn" onClick={onRestart}>
          Start over
        </button>
      </p>
    </AuthFrame>
  );
}

/**
 * A session that must do something first (the server refuses everything else): change the
 * password an administrator set, or set up two-factor authentication when it is required.
 */
export function Restricted({
  me,
  config,
  onDone,
  onSignOut,
}: {
  me: Me;
  config: PublicConfig;
  onDone: () => void;
  onSignOut: () => void;
}) {
  const [codes, setCodes] = useState<string[] | null>(null);
  const needs = me.restrictions ?? [];
  if (needs.includes('password_change_required'))
    return (
      <AuthFrame title="Choose a new password">
        <p className="lead">An administrator set a temporary password for {me.email}. Choose your own to continue.</p>
        <PasswordForm hint={config.password_hint} onChanged={onDone} />
        <p className="switch-mode">
          <button type="button" className="link-btn" onClick={onSignOut}>
            Sign out
          </button>
        </p>
      </AuthFrame>
    );
  return (
    <AuthFrame title="Set up two-factor authentication">
      {codes ? (
        <RecoveryCodes codes={codes} onDone={onDone} />
      ) : (
        <>
          <p className="lead">This server requires two-factor authentication. Set it up to continue.</p>
          <TwoFactorEnrol onEnabled={setCodes} />
        </>
      )}
      <p className="switch-mode">
        <button type="button" className="link-btn" onClick={onSignOut}>
          Sign out
        </button>
      </p>
    </AuthFrame>
  );
}
