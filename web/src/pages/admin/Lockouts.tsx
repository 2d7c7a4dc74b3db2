import { useCallback, useEffect, useState } from 'react';
import { del, get, messageOf } from '../../lib/api';
import { formatTime } from '../../lib/format';
import { Alert, ConfirmDialog, PageTitle, Spinner } from '../../components/ui';

interface Lockout {
  id: string;
  kind: 'account' | 'ip';
  /** The e-mail (or directory user name) that was submitted, or the client address. */
  label: string;
  user_id: string | null;
  failures: number;
  lockouts: number;
  refused: number;
  locked: boolean;
  locked_until: number | null;
  next_attempt_at: number | null;
  last_failure_at: number | null;
  expires_at: number;
}

function subjectName(l: Lockout): string {
  return l.kind === 'account' ? `account ${l.label}` : `address ${l.label}`;
}

/** Accounts and client addresses with failed sign-ins; an admin clears one to let it sign in again at once. */
export function LockoutsSection() {
  const [items, setItems] = useState<Lockout[] | null>(null);
  const [store, setStore] = useState('');
  const [lockedOnly, setLockedOnly] = useState(false);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [clearing, setClearing] = useState<Lockout | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await get<{ items: Lockout[]; store: string }>(
        `/api/v1/admin/lockouts?locked_only=${lockedOnly ? 'true' : 'false'}&limit=500`,
      );
      setItems(r.items);
      setStore(r.store);
    } catch (e) {
      setError(messageOf(e));
      setItems([]);
    }
  }, [lockedOnly]);

  useEffect(() => {
    void load();
  }, [load]);

  async function clear(l: Lockout) {
    setError('');
    setInfo('');
    try {
      await del(`/api/v1/admin/lockouts/${encodeURIComponent(l.id)}`);
      setInfo(`The ${subjectName(l)} was cleared: it can sign in again.`);
    } catch (e) {
      setError(messageOf(e));
    }
    await load();
  }

  return (
    <>
      <PageTitle>Sign-in lockouts</PageTitle>
      <p>
        Accounts and client addresses with recent failed sign-ins. After too many failures an account or address is
        locked for a while; clearing it forgets its failures so it can sign in again at once. Locked entries come first.
      </p>
      <div className="toolbar">
        <label className="check">
          <input type="checkbox" checked={lockedOnly} onChange={(e) => setLockedOnly(e.target.checked)} /> Locked only
        </label>
        <button type="button" className="btn btn-small" onClick={() => void load()}>
          Refresh
        </button>
      </div>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {items === null ? (
        <Spinner label="Loading lockouts" />
      ) : items.length === 0 ? (
        <p>{lockedOnly ? 'Nothing is locked.' : 'No failed sign-ins recently.'}</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Account or address</th>
                <th scope="col">Status</th>
                <th scope="col">Failures</th>
                <th scope="col">Lockouts</th>
                <th scope="col">Refused</th>
                <th scope="col">Last failure</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((l) => (
                <tr key={l.id} data-lockout={l.id}>
                  <td>
                    <div className="cell-title">
                      <span className="mono">{l.label}</span>{' '}
                      <span className="badge">{l.kind === 'account' ? 'Account' : 'Address'}</span>
                    </div>
                    {l.kind === 'account' ? (
                      <div className="cell-sub">{l.user_id ? `User ${l.user_id}` : 'No account with this name'}</div>
                    ) : null}
                  </td>
                  <td>
                    {l.locked ? (
                      <>
                        <span className="badge badge-bad">Locked</span>
                        <div className="cell-sub">until {formatTime(l.locked_until)}</div>
                      </>
                    ) : l.next_attempt_at ? (
                      <>
                        <span className="badge badge-warn">Slowed down</span>
                        <div className="cell-sub">next attempt after {formatTime(l.next_attempt_at)}</div>
                      </>
                    ) : (
                      <span className="badge badge-ok">Can sign in</span>
                    )}
                  </td>
                  <td>{l.failures}</td>
                  <td>{l.lockouts}</td>
                  <td title="Attempts refused without being checked while locked or slowed down">{l.refused}</td>
                  <td className="small nowrap">{formatTime(l.last_failure_at)}</td>
                  <td className="actions">
                    <button type="button" className="btn btn-small" onClick={() => setClearing(l)}>
                      Clear<span className="sr-only"> {subjectName(l)}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {store ? (
        <p className="muted small">
          Counted in {store === 'redis' ? 'Redis (shared by every instance)' : 'the database'}. Entries are forgotten
          once the attempt window has passed without a failure.
        </p>
      ) : null}
      <ConfirmDialog
        open={clearing !== null}
        title={`Clear the ${clearing ? subjectName(clearing) : ''}?`}
        confirmLabel="Clear"
        onCancel={() => setClearing(null)}
        onConfirm={() => {
          const l = clearing!;
          setClearing(null);
          void clear(l);
        }}
      >
        Its failed attempts and lockout are forgotten; the next sign-in is checked normally. This is recorded in the
        audit log.
      </ConfirmDialog>
    </>
  );
}
