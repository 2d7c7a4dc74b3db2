import { useCallback, useEffect, useState } from 'react';
import { del, get, messageOf } from '../../lib/api';
import { describeAgent, formatTime } from '../../lib/format';
import type { SessionInfo } from '../../lib/types';
import { useSession } from '../../components/session';
import { Alert, ConfirmDialog, PageTitle, Spinner } from '../../components/ui';

/** A table of sessions with revoke buttons; used for one's own sessions and by admins for a user's. */
export function SessionTable({
  sessions,
  onRevoke,
  busy,
}: {
  sessions: SessionInfo[];
  onRevoke: (s: SessionInfo) => void;
  busy?: boolean;
}) {
  if (sessions.length === 0) return <p>No active sessions.</p>;
  return (
    <div className="table-wrap">
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">IP address</th>
            <th scope="col">Signed in</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {sessions.map((s) => (
            <tr key={s.id}>
              <td title={s.user_agent ?? undefined}>
                {describeAgent(s.user_agent)}
                {s.current ? <span className="badge badge-ok">This session</span> : null}
                {s.impersonated_by ? <span className="badge badge-warn">Impersonation</span> : null}
              </td>
              <td>{s.ip ?? '—'}</td>
              <td>{formatTime(s.created_at)}</td>
              <td>{formatTime(s.last_used_at)}</td>
              <td>{s.expires_at ? formatTime(s.expires_at) : 'Never'}</td>
              <td className="actions">
                <button
                  type="button"
                  className="btn btn-small btn-danger-outline"
                  disabled={busy}
                  onClick={() => onRevoke(s)}
                >
                  {s.current ? 'Sign out' : 'Revoke'}
                  <span className="sr-only">
                    {' '}
                    session {describeAgent(s.user_agent)} from {s.ip ?? 'unknown address'}
                  </span>
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function SessionsSection() {
  const { signOut } = useSession();
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState<SessionInfo | 'others' | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await get<{ items: SessionInfo[] }>('/api/v1/auths/sessions');
      setSessions(r.items);
    } catch (e) {
      setError(messageOf(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function revoke(target: SessionInfo | 'others') {
    setConfirming(null);
    setError('');
    setInfo('');
    setBusy(true);
    try {
      const list = target === 'others' ? (sessions ?? []).filter((s) => !s.current) : [target];
      for (const s of list) await del(`/api/v1/auths/sessions/${encodeURIComponent(s.id)}`);
      if (target !== 'others' && target.current) {
        await signOut();
        return;
      }
      setInfo(list.length === 1 ? 'Session revoked.' : `${list.length} sessions revoked.`);
      await load();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  const others = (sessions ?? []).filter((s) => !s.current).length;
  return (
    <>
      <PageTitle>Sessions</PageTitle>
      <p>Every place where your account is signed in. Revoking a session signs it out at once.</p>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {sessions === null ? (
        <Spinner label="Loading sessions" />
      ) : (
        <>
          <SessionTable sessions={sessions} busy={busy} onRevoke={(s) => setConfirming(s)} />
          {others > 0 ? (
            <div className="row">
              <button
                type="button"
                className="btn btn-danger-outline"
                disabled={busy}
                onClick={() => setConfirming('others')}
              >
                Sign out all other sessions
              </button>
            </div>
          ) : null}
        </>
      )}
      <ConfirmDialog
        open={confirming !== null}
        title={
          confirming === 'others'
            ? 'Sign out all other sessions?'
            : confirming?.current
              ? 'Sign out of this session?'
              : 'Revoke this session?'
        }
        confirmLabel={confirming === 'others' ? 'Sign them out' : confirming?.current ? 'Sign out' : 'Revoke'}
        danger
        onConfirm={() => confirming && void revoke(confirming)}
        onCancel={() => setConfirming(null)}
      >
        {confirming === 'others'
          ? `${others} session(s) will be signed out.`
          : confirming
            ? `${describeAgent(confirming.user_agent)} from ${confirming.ip ?? 'an unknown address'} will be signed out.`
            : null}
      </ConfirmDialog>
    </>
  );
}
