import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { del, get, messageOf, patch, post } from '../../lib/api';
import { formatDate } from '../../lib/format';
import type { User, UserPage } from '../../lib/types';
import { Alert, ConfirmDialog, Field, PageTitle, Spinner } from '../../components/ui';

type Permissions = Record<string, Record<string, boolean>>;

export interface Group {
  id: string;
  name: string;
  description: string;
  permissions: Permissions;
  source: string;
  created_at: number;
  updated_at: number;
  member_count?: number;
}

interface Member extends User {
  membership_source: string;
  added_at: number;
}

/** The permissions a group can grant, as the server names them. */
export const PERMISSION_LABELS: [section: string, name: string, label: string][] = [
  ['workspace', 'models', 'Workspace: model presets'],
  ['workspace', 'knowledge', 'Workspace: knowledge bases'],
  ['workspace', 'prompts', 'Workspace: prompts'],
  ['workspace', 'tools', 'Workspace: tools'],
  ['workspace', 'skills', 'Workspace: skills'],
  ['workspace', 'tools_import', 'Workspace: import tools'],
  ['features', 'api_keys', 'API keys'],
];

export function GroupsSection() {
  const [groups, setGroups] = useState<Group[] | null>(null);
  const [query, setQuery] = useState('');
  const [error, setError] = useState('');
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const searchId = useId();

  const load = useCallback(async () => {
    const params = new URLSearchParams({ limit: '100' });
    if (query.trim()) params.set('query', query.trim());
    try {
      setGroups((await get<{ items: Group[] }>(`/api/v1/groups?${params.toString()}`)).items);
    } catch (e) {
      setError(messageOf(e));
      setGroups([]);
    }
  }, [query]);

  useEffect(() => {
    const t = window.setTimeout(() => void load(), 200);
    return () => window.clearTimeout(t);
  }, [load]);

  async function create(e: FormEvent) {
    e.preventDefault();
    setError('');
    try {
      const g = await post<Group>('/api/v1/groups', { name: name.trim(), description: description.trim() });
      setName('');
      setDescription('');
      setSelected(g.id);
      await load();
    } catch (err) {
      setError(messageOf(err));
    }
  }

  return (
    <>
      <PageTitle>Groups</PageTitle>
      <p>Groups give their members feature permissions and access to models, knowledge bases and prompts.</p>
      <Alert>{error}</Alert>
      <div className="toolbar">
        <div className="field inline">
          <label htmlFor={searchId}>Search</label>
          <input id={searchId} type="search" value={query} onChange={(e) => setQuery(e.target.value)} />
        </div>
      </div>
      {groups === null ? (
        <Spinner label="Loading groups" />
      ) : groups.length === 0 ? (
        <p>No groups yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Group</th>
                <th scope="col">Members</th>
                <th scope="col">Permissions</th>
                <th scope="col">Source</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {groups.map((g) => {
                const on = PERMISSION_LABELS.filter(([s, n]) => g.permissions[s]?.[n]).map(([, , l]) => l);
                return (
                  <tr key={g.id}>
                    <td>
                      <div className="cell-title">{g.name}</div>
                      {g.description ? <div className="cell-sub">{g.description}</div> : null}
                    </td>
                    <td>{g.member_count ?? '—'}</td>
                    <td className="small">{on.length ? on.join(', ') : 'None'}</td>
                    <td>{g.source}</td>
                    <td className="actions">
                      <button
                        type="button"
                        className="btn btn-small"
                        aria-expanded={selected === g.id}
                        onClick={() => setSelected(selected === g.id ? null : g.id)}
                      >
                        Edit<span className="sr-only"> group {g.name}</span>
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {selected ? (
        <GroupEditor
          key={selected}
          id={selected}
          onClose={() => setSelected(null)}
          onChanged={() => void load()}
          onDeleted={() => {
            setSelected(null);
            void load();
          }}
        />
      ) : null}
      <h2>New group</h2>
      <form onSubmit={create} className="stack narrow">
        <Field
          label="Group name"
          name="group-name"
          required
          maxLength={200}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <Field
          label="Description"
          name="group-description"
          maxLength={2000}
          value={description}
          onChange={(e) => setDescription(e.target.value)}
        />
        <div className="row">
          <button type="submit" className="btn btn-primary" disabled={!name.trim()}>
            Create group
          </button>
        </div>
      </form>
    </>
  );
}

function GroupEditor({
  id,
  onClose,
  onChanged,
  onDeleted,
}: {
  id: string;
  onClose: () => void;
  onChanged: () => void;
  onDeleted: () => void;
}) {
  const [group, setGroup] = useState<Group | null>(null);
  const [members, setMembers] = useState<Member[]>([]);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [perms, setPerms] = useState<Permissions>({});
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [userQuery, setUserQuery] = useState('');
  const [candidates, setCandidates] = useState<User[]>([]);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const addId = useId();
  const base = `/api/v1/groups/${encodeURIComponent(id)}`;

  const load = useCallback(async () => {
    try {
      const g = await get<Group>(base);
      setGroup(g);
      setName(g.name);
      setDescription(g.description);
      setPerms(g.permissions);
      setMembers((await get<{ items: Member[] }>(`${base}/members?limit=500`)).items);
    } catch (e) {
      setError(messageOf(e));
    }
  }, [base]);

  useEffect(() => {
    void load();
  }, [load]);

  useEffect(() => {
    if (!userQuery.trim()) {
      setCandidates([]);
      return;
    }
    const t = window.setTimeout(async () => {
      try {
        const r = await get<UserPage>(`/api/v1/users?limit=10&query=${encodeURIComponent(userQuery.trim())}`);
        setCandidates(r.items);
      } catch {
        setCandidates([]);
      }
    }, 200);
    return () => window.clearTimeout(t);
  }, [userQuery]);

  async function run(action: () => Promise<unknown>, done: string) {
    setError('');
    setInfo('');
    setBusy(true);
    try {
      await action();
      setInfo(done);
      await load();
      onChanged();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  if (!group)
    return (
      <section className="panel">
        <Alert>{error}</Alert>
        {!error ? <Spinner label="Loading the group" /> : null}
      </section>
    );

  const memberIds = new Set(members.map((m) => m.id));
  return (
    <section className="panel" aria-label={`Group ${group.name}`}>
      <div className="panel-head">
        <h2>{group.name}</h2>
        <button type="button" className="btn btn-small" onClick={onClose}>
          Close
        </button>
      </div>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      <form
        className="stack narrow"
        onSubmit={(e) => {
          e.preventDefault();
          void run(() => patch(base, { name: name.trim(), description, permissions: perms }), 'Group saved.');
        }}
      >
        <Field
          label="Name"
          name="name"
          required
          maxLength={200}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <Field
          label="Description"
          name="description"
          maxLength={2000}
          value={description}
          onChange={(e) => setDescription(e.target.value)}
        />
        <fieldset className="fieldset">
          <legend>Permissions of the members</legend>
          {PERMISSION_LABELS.map(([section, key, label]) => (
            <label key={`${section}.${key}`} className="check">
              <input
                type="checkbox"
                checked={perms[section]?.[key] === true}
                onChange={(e) =>
                  setPerms((p) => ({ ...p, [section]: { ...(p[section] ?? {}), [key]: e.target.checked } }))
                }
              />{' '}
              {label}
            </label>
          ))}
        </fieldset>
        <div className="row">
          <button type="submit" className="btn btn-primary" disabled={busy || !name.trim()}>
            Save group
          </button>
          <button
            type="button"
            className="btn btn-danger-outline"
            disabled={busy}
            onClick={() => setConfirmDelete(true)}
          >
            Delete group
          </button>
        </div>
      </form>

      <h3>Members ({members.length})</h3>
      {members.length === 0 ? (
        <p>No members.</p>
      ) : (
        <ul className="plain-list">
          {members.map((m) => (
            <li key={m.id}>
              <span>
                {m.name} <span className="muted">{m.email}</span>
                {m.membership_source !== 'local' ? (
                  <span className="badge badge-warn">{m.membership_source}</span>
                ) : null}
                <span className="muted small"> · since {formatDate(m.added_at)}</span>
              </span>
              <button
                type="button"
                className="btn btn-small btn-danger-outline"
                disabled={busy}
                onClick={() =>
                  void run(
                    () => del(`${base}/members/${encodeURIComponent(m.id)}`),
                    `${m.email} was removed from the group.`,
                  )
                }
              >
                Remove<span className="sr-only"> {m.email}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="field narrow">
        <label htmlFor={addId}>Add a member</label>
        <input
          id={addId}
          type="search"
          placeholder="Name or e-mail"
          value={userQuery}
          onChange={(e) => setUserQuery(e.target.value)}
        />
      </div>
      {candidates.length ? (
        <ul className="plain-list" aria-label="Matching users">
          {candidates.map((u) => (
            <li key={u.id}>
              <span>
                {u.name} <span className="muted">{u.email}</span>
              </span>
              <button
                type="button"
                className="btn btn-small"
                disabled={busy || memberIds.has(u.id)}
                onClick={() =>
                  void run(async () => {
                    await post(`${base}/members`, { user_ids: [u.id] });
                    setUserQuery('');
                  }, `${u.email} was added to the group.`)
                }
              >
                {memberIds.has(u.id) ? 'Member' : 'Add'}
                <span className="sr-only"> {u.email}</span>
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      <ConfirmDialog
        open={confirmDelete}
        danger
        title={`Delete the group “${group.name}”?`}
        confirmLabel="Delete group"
        onCancel={() => setConfirmDelete(false)}
        onConfirm={() => {
          setConfirmDelete(false);
          void (async () => {
            try {
              await del(base);
              onDeleted();
            } catch (e) {
              setError(messageOf(e));
            }
          })();
        }}
      >
        Its members lose what the group gave them, and its grants on models and resources are removed.
      </ConfirmDialog>
    </section>
  );
}
