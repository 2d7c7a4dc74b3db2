import { useCallback, useEffect, useMemo, useState } from 'react';
import { ApiError, get, messageOf, onAuthLost, post } from './lib/api';
import { Link, navigate, usePath } from './lib/router';
import type { Me, MyPermissions, PublicConfig } from './lib/types';
import { SessionContext, type SessionState } from './components/session';
import { Spinner, ThemeToggle } from './components/ui';
import { Onboarding, Pending, Restricted, SignIn } from './pages/Auth';
import { ChatPage } from './pages/Chat';
import { SettingsPage } from './pages/settings/Settings';
import { AdminPage } from './pages/admin/Admin';
import { NotFound } from './pages/NotFound';
import { SharedChatPage } from './pages/chat/SharedChat';
import { WorkspacePage, workspaceTabs } from './pages/workspace/Workspace';

type Boot =
  | { status: 'loading' }
  | { status: 'error'; message: string }
  | { status: 'ready'; config: PublicConfig; me: Me | null; permissions: MyPermissions | null };

export function App() {
  const [boot, setBoot] = useState<Boot>({ status: 'loading' });
  const [notice, setNotice] = useState<string | undefined>();
  const [knownEmail, setKnownEmail] = useState<string | undefined>();

  const load = useCallback(async () => {
    try {
      const config = await get<PublicConfig>('/api/config');
      let me: Me | null = null;
      let permissions: MyPermissions | null = null;
      if (!config.onboarding) {
        try {
          me = await get<Me>('/api/v1/auths/', { quietAuth: true });
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 401)) throw e;
        }
      }
      if (me && me.role !== 'pending' && !me.restrictions?.length)
        permissions = await get<MyPermissions>('/api/v1/users/me/permissions', { quietAuth: true }).catch(() => null);
      setBoot({ status: 'ready', config, me, permissions });
    } catch (e) {
      setBoot({ status: 'error', message: messageOf(e) });
    }
  }, []);

  useEffect(() => {
    void load();
    onAuthLost((err) => {
      setNotice(err.message || 'Your session has ended. Sign in again.');
      setBoot((b) => (b.status === 'ready' ? { ...b, me: null } : b));
    });
    return () => onAuthLost(null);
  }, [load]);

  const signOut = useCallback(async () => {
    try {
      await post('/api/v1/auths/signout', undefined, { quietAuth: true });
    } catch {
      // Already signed out on the server: nothing else to do.
    }
    setNotice('You have signed out.');
    setBoot((b) => (b.status === 'ready' ? { ...b, me: null } : b));
    navigate('/', { replace: true });
  }, []);

  if (boot.status === 'loading')
    return (
      <main id="main" className="center-page">
        <Spinner label="Loading HridaAI" />
      </main>
    );
  if (boot.status === 'error')
    return (
      <main id="main" className="center-page">
        <h1 className="page-title">HridaAI is not reachable</h1>
        <p>{boot.message}</p>
        <button type="button" className="btn btn-primary" onClick={() => void load()}>
          Try again
        </button>
      </main>
    );

  const { config, me } = boot;
  if (config.onboarding) return <Onboarding config={config} onDone={() => void load()} />;
  if (!me)
    return (
      <SignIn
        key={knownEmail ?? 'signin'}
        config={config}
        notice={notice}
        initialEmail={knownEmail}
        onSignedIn={() => {
          setNotice(undefined);
          setKnownEmail(undefined);
          void load();
        }}
      />
    );
  if (me.role === 'pending')
    return (
      <Pending
        me={me}
        onSignOut={() => void signOut()}
        onReviewed={(email, signedIn) => {
          if (signedIn) return void load();
          setKnownEmail(email);
          setNotice('Your account has been reviewed. Sign in again to continue.');
          setBoot({ ...boot, me: null });
        }}
      />
    );
  if (me.restrictions?.length)
    return <Restricted me={me} config={config} onDone={() => void load()} onSignOut={() => void signOut()} />;
  return <Shell config={config} me={me} permissions={boot.permissions} reload={load} signOut={signOut} />;
}

function Shell({
  config,
  me,
  permissions,
  reload,
  signOut,
}: {
  config: PublicConfig;
  me: Me;
  permissions: MyPermissions | null;
  reload: () => Promise<void>;
  signOut: () => Promise<void>;
}) {
  const path = usePath();
  const [menuOpen, setMenuOpen] = useState(false);
  const session: SessionState = useMemo(
    () => ({ config, me, permissions, refresh: reload, signOut }),
    [config, me, permissions, reload, signOut],
  );

  useEffect(() => setMenuOpen(false), [path]);

  async function endImpersonation() {
    try {
      await post('/api/v1/auths/impersonation/end', undefined, { quietAuth: true });
    } catch {
      // Expired already: starting again brings back whatever session the browser still holds.
    }
    window.location.assign('/admin/users');
  }
  const section = path.split('/')[1] ?? '';
  useEffect(() => {
    // The start page is the chat; admin pages are not offered to other roles (the API refuses them too).
    if (path === '/' || (section === 'admin' && me.role !== 'admin')) navigate('/chat', { replace: true });
  }, [path, section, me.role]);

  const links = [
    { to: '/chat', label: 'Chat', key: 'chat' },
    ...(workspaceTabs(session).length ? [{ to: '/workspace', label: 'Workspace', key: 'workspace' }] : []),
    { to: '/settings', label: 'Settings', key: 'settings' },
    ...(me.role === 'admin' ? [{ to: '/admin', label: 'Admin', key: 'admin' }] : []),
  ];

  let page;
  const parts = path.split('/');
  if (section === 'chat' || section === '') page = <ChatPage chatId={parts[2] ? decodeURIComponent(parts[2]) : null} />;
  else if (section === 'workspace') page = <WorkspacePage path={path} />;
  else if (section === 's' && parts[2]) page = <SharedChatPage shareId={decodeURIComponent(parts[2])} />;
  else if (section === 'settings') page = <SettingsPage path={path} />;
  else if (section === 'admin' && me.role === 'admin') page = <AdminPage path={path} />;
  else page = <NotFound />;

  return (
    <SessionContext.Provider value={session}>
      <div className={`shell shell-${section || 'chat'}`}>
        <a className="skip-link" href="#main">
          Skip to content
        </a>
        {me.impersonated_by ? (
          <div className="impersonation-banner" role="status">
            You are acting as <strong>{me.name}</strong> ({me.email}). Everything you do is recorded under your own
            administrator account.{' '}
            <button type="button" className="btn btn-small" onClick={() => void endImpersonation()}>
              Stop acting as {me.name}
            </button>
          </div>
        ) : null}
        <header className="topbar">
          <Link to="/chat" className="brand">
            <span className="brand-mark" aria-hidden="true" /> HridaAI
          </Link>
          <button
            type="button"
            className="btn btn-ghost icon-btn menu-btn"
            aria-expanded={menuOpen}
            aria-controls="main-nav"
            aria-label="Menu"
            onClick={() => setMenuOpen(!menuOpen)}
          >
            <span aria-hidden="true">☰</span>
          </button>
          <nav id="main-nav" aria-label="Main" className={menuOpen ? 'open' : ''}>
            <ul>
              {links.map((l) => (
                <li key={l.key}>
                  <Link to={l.to} aria-current={section === l.key ? 'page' : undefined}>
                    {l.label}
                  </Link>
                </li>
              ))}
            </ul>
          </nav>
          <div className="topbar-end">
            <ThemeToggle />
            <span className="whoami" title={me.email}>
              {me.name}
            </span>
            <button type="button" className="btn btn-ghost" onClick={() => void signOut()}>
              Sign out
            </button>
          </div>
        </header>
        <main id="main" className="main">
          {page}
        </main>
      </div>
    </SessionContext.Provider>
  );
}
