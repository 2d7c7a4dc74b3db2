import { useCallback, useEffect, useId, useState } from 'react';
import { del, get, messageOf, post } from '../lib/api';
import type { User, UserPage } from '../lib/types';
import { useSession } from './session';
import { Alert, Spinner } from './ui';

interface Grant {
  id: string;
  principal_type: 'user' | 'group';
  principal_id: string;
  permission: 'read' | 'write';
}

interface Principal {
  type: 'user' | 'group';
  id: string;
  label: string;
}

/**
 * Who else may read or change a resource (`/api/v1/access/:type/:id/grants`). Administrators pick
 * users and groups by name; others pick among their own groups or paste a user id.
 */
export function GrantEditor({ type, id, name }: { type: string; id: string; name: string }) {
  const session = useSession();
  const isAdmin = session.me.role === 'admin';
  const [grants, setGrants] = useState<Grant[] | null>(null);
  const [names, setNames] = useState<Record<string, string>>({});
  const [choices, setChoices] = useState<Principal[]>([]);
  const [query, setQuery] = useState('');
  const [manualId, setManualId] = useState('');
  const [permission, setPermission] = useState<'read' | 'write'>('read');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const searchId = useId();
  const permId = useId();
  const base = `/api/v1/access/${encodeURIComponent(type)}/${encodeURIComponent(id)}/grants`;

  const load = useCallback(async () => {
    try {
      setGrants((await get<{ items: Grant[] }>(base)).items);
    } catch (e) {
      setError(messageOf(e));
      setGrants([]);
    }
  }, [base]);

  useEffect(() => {
    void load();
  }, [load]);

  // Names of groups: all of them for admins, one's own for others.
  useEffect(() => {
    const own = (session.permissions?.groups ?? []).map((g) => ({ type: 'group' as const, id: g.id, label: g.name }));
    if (!isAdmin) {
      setNames((n) => ({ ...n, ...Object.fromEntries(own.map((g) => [`group:${g.id}`, g.label])) }));
      return;
    }
    get<{ items: { id: string; name: string }[] }>('/api/v1/groups?limit=100')
      .then((r) => setNames((n) => ({ ...n, ...Object.fromEntries(r.items.map((g) => [`group:${g.id}`, g.name])) })))
      .catch(() => undefined);
  }, [isAdmin, session.permissions]);

  useEffect(() => {
    const q = query.trim().toLowerCase();
    if (!q) {
      setChoices([]);
      return;
    }
    const t = window.setTimeout(async () => {
      const found: Principal[] = [];
      if (isAdmin) {
        try {
          const [users, groups] = await Promise.all([
            get<UserPage>(`/api/v1/users?limit=8&query=${encodeURIComponent(q)}`),
            get<{ items: { id: string; name: string }[] }>(`/api/v1/groups?limit=8&query=${encodeURIComponent(q)}`),
          ]);
          for (const g of groups.items) found.push({ type: 'group', id: g.id, label: `Group: ${g.name}` });
          for (const u of users.items as User[])
            found.push({ type: 'user', id: u.id, label: `${u.name} (${u.email})` });
          setNames((n) => ({
            ...n,
            ...Object.fromEntries((users.items as User[]).map((u) => [`user:${u.id}`, `${u.name} (${u.email})`])),
          }));
        } catch {
          // Nothing found.
        }
      } else {
        for (const g of session.permissions?.groups ?? [])
          if (g.name.toLowerCase().includes(q)) found.push({ type: 'group', id: g.id, label: `Group: ${g.name}` });
      }
      setChoices(found);
    }, 200);
    return () => window.clearTimeout(t);
  }, [query, isAdmin, session.permissions]);

  async function add(p: { type: 'user' | 'group'; id: string }) {
    setError('');
    setBusy(true);
    try {
      await post(base, { principal_type: p.type, principal_id: p.id, permission });
      setQuery('');
      setManualId('');
      await load();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  async function remove(g: Grant) {
    setError('');
    try {
      await del(`${base}/${encodeURIComponent(g.id)}`);
      await load();
    } catch (e) {
      setError(messageOf(e));
    }
  }

  const label = (g: Grant) => names[`${g.principal_type}:${g.principal_id}`] ?? `${g.principal_type} ${g.principal_id}`;
  return (
    <section className="grants" aria-label={`Access to ${name}`}>
      <h3>Who has access</h3>
      <Alert>{error}</Alert>
      {grants === null ? (
        <Spinner label="Loading access" />
      ) : grants.length === 0 ? (
        <p className="muted">Only the owner{isAdmin ? ' and administrators' : ''}.</p>
      ) : (
        <ul className="plain-list">
          {grants.map((g) => (
            <li key={g.id}>
              <span>
                {label(g)} <span className="badge badge-ok">{g.permission === 'write' ? 'Can edit' : 'Can use'}</span>
              </span>
              <button type="button" className="btn btn-small btn-danger-outline" onClick={() => void remove(g)}>
                Remove<span className="sr-only"> access of {label(g)}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="toolbar">
        <div className="field inline">
          <label htmlFor={permId}>Access</label>
          <select id={permId} value={permission} onChange={(e) => setPermission(e.target.value as 'read' | 'write')}>
            <option value="read">Can use</option>
            <option value="write">Can edit</option>
          </select>
        </div>
        <div className="field inline">
          <label htmlFor={searchId}>{isAdmin ? 'Add a user or group' : 'Add one of your groups'}</label>
          <input id={searchId} type="search" value={query} onChange={(e) => setQuery(e.target.value)} />
        </div>
      </div>
      {choices.length ? (
        <ul className="plain-list" aria-label="Matches">
          {choices.map((c) => (
            <li key={`${c.type}:${c.id}`}>
              <span>{c.label}</span>
              <button type="button" className="btn btn-small" disabled={busy} onClick={() => void add(c)}>
                Give access<span className="sr-only"> to {c.label}</span>
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      {!isAdmin ? (
        <form
          className="field inline"
          onSubmit={(e) => {
            e.preventDefault();
            if (manualId.trim()) void add({ type: 'user', id: manualId.trim() });
          }}
        >
          <label htmlFor={`${searchId}-uid`}>Or a user id</label>
          <input id={`${searchId}-uid`} value={manualId} onChange={(e) => setManualId(e.target.value)} />
          <button type="submit" className="btn btn-small" disabled={busy || !manualId.trim()}>
            Give access
          </button>
        </form>
      ) : null}
    </section>
  );
}
