import { useCallback, useEffect, useId, useState } from 'react';
import { ApiError, del, get, messageOf, patch, post } from '../../lib/api';
import { formatDate, formatTime } from '../../lib/format';
import type { ApiKeyInfo, Role, SessionInfo, User, UserPage } from '../../lib/types';
import { useSession } from '../../components/session';
import { Alert, ConfirmDialog, Field, FormDialog, PageTitle, Spinner } from '../../components/ui';
import { SessionTable } from '../settings/Sessions';

const LIMIT = 25;

type Pending =
  { kind: 'delete'; user: User } | { kind: 'deactivate'; user: User } | { kind: 'role'; user: User; role: Role } | null;

export function UsersSection() {
  const { me } = useSession();
  const [query, setQuery] = useState('');
  const [role, setRole] = useState<'' | Role>('');
  const [page, setPage] = useState(1);
  const [data, setData] = useState<UserPage | null>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState<Pending>(null);
  const [sessionsOf, setSessionsOf] = useState<User | null>(null);
  const [actAs, setActAs] = useState<User | null>(null);
  const [reason, setReason] = useState('');
  const searchId = useId();
  const roleId = useId();

  const load = useCallback(async () => {
    const params = new URLSearchParams({ page: String(page), limit: String(LIMIT) });
    if (query.trim()) params.set('query', query.trim());
    if (role) params.set('role', role);
    try {
      setData(await get<UserPage>(`/api/v1/users?${params.toString()}`));
    } catch (e) {
      setError(messageOf(e));
    }
  }, [page, query, role]);

  useEffect(() => {
    const t = window.setTimeout(() => void load(), 200);
    return () => window.clearTimeout(t);
  }, [load]);

  async function update(user: User, body: { role?: Role; active?: boolean }, message: string) {
    setConfirm(null);
    setError('');
    setInfo('');
    setBusy(true);
    try {
      await patch<User>(`/api/v1/users/${encodeURIComponent(user.id)}`, body);
      setInfo(message);
      await load();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  async function remove(user: User) {
    setConfirm(null);
    setError('');
    setInfo('');
    setBusy(true);
    try {
      await del(`/api/v1/users/${encodeURIComponent(user.id)}`);
      setInfo(`${user.email} was deleted.`);
      if (sessionsOf?.id === user.id) setSessionsOf(null);
      await load();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  async function impersonate(user: User) {
    setError('');
    setBusy(true);
    try {
      await post(`/api/v1/users/${encodeURIComponent(user.id)}/impersonate`, { reason: reason.trim() });
      // The server swapped the session cookie: start the app again as that user.
      window.location.assign('/chat');
    } catch (e) {
      setActAs(null);
      setError(messageOf(e));
      setBusy(false);
    }
  }

  const pages = data ? Math.max(1, Math.ceil(data.total / data.limit)) : 1;
  return (
    <>
      <PageTitle>Users</PageTitle>
      <div className="toolbar">
        <div className="field inline">
          <label htmlFor={searchId}>Search</label>
          <input
            id={searchId}
            type="search"
            placeholder="Name or e-mail"
            value={query}
            onChange={(e) => {
              setQuery(e.target.value);
              setPage(1);
            }}
          />
        </div>
        <div className="field inline">
          <label htmlFor={roleId}>Role</label>
          <select
            id={roleId}
            value={role}
            onChange={(e) => {
              setRole(e.target.value as '' | Role);
              setPage(1);
            }}
          >
            <option value="">All</option>
            <option value="pending">Pending approval</option>
            <option value="user">User</option>
            <option value="admin">Admin</option>
          </select>
        </div>
      </div>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {data === null ? (
        <Spinner label="Loading users" />
      ) : data.items.length === 0 ? (
        <p>No users match.</p>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-describedby={`${searchId}-count`}>
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Last active</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((u) => (
                <UserRow
                  key={u.id}
                  user={u}
                  self={u.id === me.id}
                  busy={busy}
                  onApprove={() => void update(u, { role: 'user' }, `${u.email} was approved.`)}
                  onRole={(r) => setConfirm({ kind: 'role', user: u, role: r })}
                  onActivate={() => void update(u, { active: true }, `${u.email} was reactivated.`)}
                  onDeactivate={() => setConfirm({ kind: 'deactivate', user: u })}
                  onDelete={() => setConfirm({ kind: 'delete', user: u })}
                  onSessions={() => setSessionsOf(sessionsOf?.id === u.id ? null : u)}
                  onActAs={
                    u.role !== 'admin' && u.active && !me.impersonated_by
                      ? () => {
                          setReason('');
                          setActAs(u);
                        }
                      : undefined
                  }
                  sessionsOpen={sessionsOf?.id === u.id}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data ? (
        <div className="pager">
          <span id={`${searchId}-count`}>
            {data.total} user{data.total === 1 ? '' : 's'} · page {data.page} of {pages}
          </span>
          <button type="button" className="btn btn-small" disabled={page <= 1} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <button type="button" className="btn btn-small" disabled={page >= pages} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </div>
      ) : null}
      {sessionsOf ? <UserPanel key={sessionsOf.id} user={sessionsOf} onClose={() => setSessionsOf(null)} /> : null}
      <FormDialog
        open={actAs !== null}
        title={`Act as ${actAs?.email ?? ''}`}
        submitLabel="Start"
        busy={busy || reason.trim().length < 3}
        onCancel={() => setActAs(null)}
        onSubmit={() => actAs && void impersonate(actAs)}
      >
        <p>
          You will see HridaAI as this user for up to 30 minutes. A banner stays visible, and everything you do is
          recorded with your own account as the actor.
        </p>
        <div className="field">
          <label htmlFor="impersonation-reason">Reason (recorded in the audit trail)</label>
          <textarea
            id="impersonation-reason"
            rows={2}
            required
            minLength={3}
            maxLength={1000}
            value={reason}
            onChange={(e) => setReason(e.target.value)}
          />
        </div>
      </FormDialog>
      <ConfirmDialog
        open={confirm !== null}
        danger={confirm?.kind !== 'role'}
        title={
          confirm?.kind === 'delete'
            ? `Delete ${confirm.user.email}?`
            : confirm?.kind === 'deactivate'
              ? `Deactivate ${confirm.user.email}?`
              : confirm?.kind === 'role'
                ? `Make ${confirm.user.email} ${confirm.role === 'admin' ? 'an admin' : `a ${confirm.role} account`}?`
                : ''
        }
        confirmLabel={
          confirm?.kind === 'delete' ? 'Delete' : confirm?.kind === 'deactivate' ? 'Deactivate' : 'Change role'
        }
        onCancel={() => setConfirm(null)}
        onConfirm={() => {
          if (!confirm) return;
          if (confirm.kind === 'delete') void remove(confirm.user);
          else if (confirm.kind === 'deactivate')
            void update(confirm.user, { active: false }, `${confirm.user.email} was deactivated.`);
          else void update(confirm.user, { role: confirm.role }, `${confirm.user.email} is now ${confirm.role}.`);
        }}
      >
        {confirm?.kind === 'delete'
          ? 'The account and its sessions are removed. This cannot be undone.'
          : confirm?.kind === 'deactivate'
            ? 'The account is signed out everywhere and cannot sign in until it is reactivated.'
            : confirm?.kind === 'role'
              ? 'Changing the role signs the account out everywhere; it signs in again with the new role.'
              : null}
      </ConfirmDialog>
    </>
  );
}

function UserRow({
  user,
  self,
  busy,
  sessionsOpen,
  onApprove,
  onRole,
  onActivate,
  onDeactivate,
  onDelete,
  onSessions,
  onActAs,
}: {
  user: User;
  self: boolean;
  busy: boolean;
  sessionsOpen: boolean;
  onApprove: () => void;
  onRole: (r: Role) => void;
  onActivate: () => void;
  onDeactivate: () => void;
  onDelete: () => void;
  onSessions: () => void;
  onActAs?: () => void;
}) {
  const roleId = useId();
  return (
    <tr>
      <td>
        <div className="cell-title">{user.name}</div>
        <div className="cell-sub">{user.email}</div>
      </td>
      <td>
        <label htmlFor={roleId} className="sr-only">
          Role of {user.email}
        </label>
        <select id={roleId} value={user.role} disabled={busy || self} onChange={(e) => onRole(e.target.value as Role)}>
          <option value="pending">Pending</option>
          <option value="user">User</option>
          <option value="admin">Admin</option>
        </select>
      </td>
      <td>
        {!user.active ? (
          <span className="badge badge-bad">Deactivated</span>
        ) : user.role === 'pending' ? (
          <span className="badge badge-warn">Awaiting approval</span>
        ) : (
          <span className="badge badge-ok">Active</span>
        )}
      </td>
      <td title={formatTime(user.created_at)}>{formatDate(user.created_at)}</td>
      <td title={formatTime(user.last_active_at)}>{formatDate(user.last_active_at)}</td>
      <td className="actions wide">
        {user.role === 'pending' && user.active ? (
          <button type="button" className="btn btn-small btn-primary" disabled={busy} onClick={onApprove}>
            Approve<span className="sr-only"> {user.email}</span>
          </button>
        ) : null}
        <button type="button" className="btn btn-small" aria-expanded={sessionsOpen} onClick={onSessions}>
          Manage<span className="sr-only"> {user.email}</span>
        </button>
        {onActAs ? (
          <button type="button" className="btn btn-small" onClick={onActAs}>
            Act as<span className="sr-only"> {user.email}</span>
          </button>
        ) : null}
        {!self ? (
          user.active ? (
            <button type="button" className="btn btn-small btn-danger-outline" disabled={busy} onClick={onDeactivate}>
              Deactivate<span className="sr-only"> {user.email}</span>
            </button>
          ) : (
            <button type="button" className="btn btn-small" disabled={busy} onClick={onActivate}>
              Reactivate<span className="sr-only"> {user.email}</span>
            </button>
          )
        ) : null}
        {!self ? (
          <button type="button" className="btn btn-small btn-danger" disabled={busy} onClick={onDelete}>
            Delete<span className="sr-only"> {user.email}</span>
          </button>
        ) : null}
      </td>
    </tr>
  );
}

interface UserSecurity {
  two_factor: { enabled: boolean; enabled_at: number | null; recovery_codes_remaining: number };
  must_change_password: boolean;
}

/** Sessions and sign-in security of one user. */
function UserPanel({ user, onClose }: { user: User; onClose: () => void }) {
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const [security, setSecurity] = useState<UserSecurity | null | 'none'>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [setPw, setSetPw] = useState(false);
  const [tempPassword, setTempPassword] = useState('');
  const [requireChange, setRequireChange] = useState(true);
  const [resetting, setResetting] = useState(false);
  const base = `/api/v1/users/${encodeURIComponent(user.id)}`;

  const load = useCallback(async () => {
    try {
      setSessions((await get<{ items: SessionInfo[] }>(`${base}/sessions`)).items);
    } catch (e) {
      setError(messageOf(e));
    }
    try {
      setSecurity(await get<UserSecurity>(`${base}/security`));
    } catch (e) {
      setSecurity(e instanceof ApiError && e.status === 404 ? 'none' : null);
    }
  }, [base]);

  useEffect(() => {
    void load();
  }, [load]);

  async function run(action: () => Promise<unknown>, done?: string) {
    setError('');
    setInfo('');
    setBusy(true);
    try {
      await action();
      if (done) setInfo(done);
      await load();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-label={`Manage ${user.email}`}>
      <div className="panel-head">
        <h2>{user.email}</h2>
        <button type="button" className="btn btn-small" onClick={onClose}>
          Close
        </button>
      </div>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      <section aria-label={`Sessions of ${user.email}`}>
        <h3>Sessions</h3>
        {sessions === null ? (
          <Spinner label="Loading sessions" />
        ) : (
          <>
            <SessionTable
              sessions={sessions}
              busy={busy}
              onRevoke={(s) => void run(() => del(`${base}/sessions/${encodeURIComponent(s.id)}`), 'Session revoked.')}
            />
            {sessions.length > 0 ? (
              <div className="row">
                <button
                  type="button"
                  className="btn btn-danger-outline"
                  disabled={busy}
                  onClick={() => void run(() => del(`${base}/sessions`), 'Every session was revoked.')}
                >
                  Revoke all sessions of {user.email}
                </button>
              </div>
            ) : null}
          </>
        )}
      </section>
      <UserApiKeys user={user} />
      {security && security !== 'none' ? (
        <section aria-label={`Sign-in security of ${user.email}`}>
          <h3>Sign-in security</h3>
          <dl className="facts">
            <dt>Two-factor</dt>
            <dd>{security.two_factor.enabled ? `On since ${formatTime(security.two_factor.enabled_at)}` : 'Off'}</dd>
            <dt>Password change required</dt>
            <dd>{security.must_change_password ? 'Yes, at the next sign-in' : 'No'}</dd>
          </dl>
          <div className="row">
            {security.two_factor.enabled ? (
              <button type="button" className="btn btn-small" disabled={busy} onClick={() => setResetting(true)}>
                Reset two-factor
              </button>
            ) : null}
            <button
              type="button"
              className="btn btn-small"
              disabled={busy}
              onClick={() => {
                setTempPassword('');
                setRequireChange(true);
                setSetPw(true);
              }}
            >
              Set a temporary password
            </button>
            <button
              type="button"
              className="btn btn-small"
              disabled={busy}
              onClick={() =>
                void run(
                  () => post(`${base}/require-password-change`, { required: !security.must_change_password }),
                  security.must_change_password
                    ? 'No password change is required any more.'
                    : 'A password change is now required.',
                )
              }
            >
              {security.must_change_password ? 'Do not require a password change' : 'Require a password change'}
            </button>
          </div>
        </section>
      ) : null}
      <ConfirmDialog
        open={resetting}
        title={`Reset two-factor for ${user.email}?`}
        confirmLabel="Reset"
        danger
        onCancel={() => setResetting(false)}
        onConfirm={() => {
          setResetting(false);
          void run(() => del(`${base}/2fa`), 'Two-factor authentication was reset.');
        }}
      >
        For a lost device: the secret and recovery codes are removed; the user sets it up again.
      </ConfirmDialog>
      <FormDialog
        open={setPw}
        title={`Temporary password for ${user.email}`}
        submitLabel="Set password"
        busy={busy || !tempPassword}
        onCancel={() => setSetPw(false)}
        onSubmit={() => {
          setSetPw(false);
          void run(
            () => post(`${base}/password`, { password: tempPassword, require_change: requireChange }),
            'The password was set and every session of the user was signed out.',
          );
        }}
      >
        <Field
          label="Temporary password"
          name="temp-password"
          type="password"
          autoComplete="new-password"
          value={tempPassword}
          onChange={(e) => setTempPassword(e.target.value)}
        />
        <label className="check">
          <input type="checkbox" checked={requireChange} onChange={(e) => setRequireChange(e.target.checked)} /> Ask for
          a new password at the next sign-in
        </label>
      </FormDialog>
    </section>
  );
}

/** The API keys of one user (metadata only), each revocable at once. */
function UserApiKeys({ user }: { user: User }) {
  const [keys, setKeys] = useState<ApiKeyInfo[] | null>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [revoking, setRevoking] = useState<ApiKeyInfo | null>(null);
  const url = `/api/v1/users/${encodeURIComponent(user.id)}/api-keys`;

  const load = useCallback(async () => {
    try {
      setKeys((await get<{ items: ApiKeyInfo[] }>(url)).items);
    } catch (e) {
      setError(messageOf(e));
      setKeys([]);
    }
  }, [url]);

  useEffect(() => {
    void load();
  }, [load]);

  async function revoke(key: ApiKeyInfo) {
    setRevoking(null);
    setError('');
    setInfo('');
    setBusy(true);
    try {
      await del(`/api/v1/admin/api-keys/${encodeURIComponent(key.id)}`);
      setInfo(`The key “${key.name}” was revoked.`);
      await load();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-label={`API keys of ${user.email}`}>
      <h3>API keys</h3>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {keys === null ? (
        <Spinner label="Loading API keys" />
      ) : keys.length === 0 ? (
        <p>No API keys.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id}>
                  <td className="cell-title">{k.name}</td>
                  <td className="mono small">
                    {k.prefix}…{k.hint}
                  </td>
                  <td title={formatTime(k.created_at)}>{formatDate(k.created_at)}</td>
                  <td title={formatTime(k.last_used_at)}>{k.last_used_at ? formatDate(k.last_used_at) : 'Never'}</td>
                  <td title={formatTime(k.expires_at)}>
                    {k.expires_at === null ? 'Never' : formatDate(k.expires_at)}
                    {k.expires_at !== null && k.expires_at <= Date.now() ? (
                      <span className="badge badge-bad">Expired</span>
                    ) : null}
                  </td>
                  <td className="actions">
                    <button
                      type="button"
                      className="btn btn-small btn-danger-outline"
                      disabled={busy}
                      onClick={() => setRevoking(k)}
                    >
                      Revoke<span className="sr-only"> key {k.name}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={revoking !== null}
        danger
        title={`Revoke “${revoking?.name ?? ''}” of ${user.email}?`}
        confirmLabel="Revoke"
        onCancel={() => setRevoking(null)}
        onConfirm={() => revoking && void revoke(revoking)}
      >
        Programs using this key stop working at once. The owner sees it disappear from their list.
      </ConfirmDialog>
    </section>
  );
}
