import { useCallback, useEffect, useId, useState } from 'react';
import { get, messageOf } from '../../lib/api';
import { Alert, PageTitle, Spinner } from '../../components/ui';
import { PERMISSION_LABELS, type Group } from './Groups';

interface MatrixItem {
  user: { id: string; email: string; name: string; role: string; active: boolean };
  admin_bypass: boolean;
  groups: string[];
  permissions: Record<string, Record<string, boolean>>;
  permission_via: Record<string, string[]>;
  resources: {
    resource_type: string;
    resource_id: string;
    permissions: { read: boolean; write: boolean; share: boolean; delete: boolean };
    via: string[];
  }[];
  resources_truncated: boolean;
}

interface Matrix {
  items: MatrixItem[];
  total: number;
  page: number;
  limit: number;
  resource_types: string[];
}

const yes = (b: boolean) => (b ? '✓' : '—');

/** Who can do what: feature permissions and the resources each user can reach, as the policy decides. */
export function PermissionsSection() {
  const [groups, setGroups] = useState<Group[]>([]);
  const [groupId, setGroupId] = useState('');
  const [type, setType] = useState('');
  const [types, setTypes] = useState<string[]>([]);
  const [page, setPage] = useState(1);
  const [data, setData] = useState<Matrix | null>(null);
  const [error, setError] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const groupSel = useId();
  const typeSel = useId();

  useEffect(() => {
    get<{ items: Group[] }>('/api/v1/groups?limit=100')
      .then((r) => setGroups(r.items))
      .catch(() => setGroups([]));
  }, []);

  const load = useCallback(async () => {
    const p = new URLSearchParams({ page: String(page), limit: '20' });
    if (groupId) p.set('group_id', groupId);
    if (type) p.set('resource_type', type);
    try {
      const r = await get<Matrix>(`/api/v1/permissions/matrix?${p.toString()}`);
      setData(r);
      if (!type) setTypes(r.resource_types);
    } catch (e) {
      setError(messageOf(e));
    }
  }, [page, groupId, type]);

  useEffect(() => {
    void load();
  }, [load]);

  const groupName = (id: string) => groups.find((g) => g.id === id)?.name ?? id;
  const pages = data ? Math.max(1, Math.ceil(data.total / data.limit)) : 1;
  return (
    <>
      <PageTitle>Effective permissions</PageTitle>
      <p>What each account may do, computed by the same policy the server enforces.</p>
      <div className="toolbar">
        <div className="field inline">
          <label htmlFor={groupSel}>Group</label>
          <select
            id={groupSel}
            value={groupId}
            onChange={(e) => {
              setGroupId(e.target.value);
              setPage(1);
            }}
          >
            <option value="">Everyone</option>
            {groups.map((g) => (
              <option key={g.id} value={g.id}>
                {g.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor={typeSel}>Resources</label>
          <select id={typeSel} value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">All types</option>
            {types.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
      </div>
      <Alert>{error}</Alert>
      {data === null ? (
        <Spinner label="Computing permissions" />
      ) : (
        <div className="table-wrap">
          <table className="table matrix">
            <thead>
              <tr>
                <th scope="col">User</th>
                {PERMISSION_LABELS.map(([s, n, l]) => (
                  <th scope="col" key={`${s}.${n}`}>
                    {l.replace('Workspace: ', '')}
                  </th>
                ))}
                <th scope="col">Resources</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((it) => (
                <MatrixRow
                  key={it.user.id}
                  it={it}
                  open={open === it.user.id}
                  onToggle={() => setOpen(open === it.user.id ? null : it.user.id)}
                  groupName={groupName}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data ? (
        <div className="pager">
          <span>
            {data.total} account{data.total === 1 ? '' : 's'} · page {data.page} of {pages}
          </span>
          <button type="button" className="btn btn-small" disabled={page <= 1} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <button type="button" className="btn btn-small" disabled={page >= pages} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </div>
      ) : null}
    </>
  );
}

function MatrixRow({
  it,
  open,
  onToggle,
  groupName,
}: {
  it: MatrixItem;
  open: boolean;
  onToggle: () => void;
  groupName: (id: string) => string;
}) {
  return (
    <>
      <tr>
        <th scope="row">
          <div className="cell-title">{it.user.name}</div>
          <div className="cell-sub">
            {it.user.email} · {it.user.role}
            {it.admin_bypass ? ' · bypasses access control' : ''}
          </div>
          {it.groups.length ? <div className="cell-sub">Groups: {it.groups.map(groupName).join(', ')}</div> : null}
        </th>
        {PERMISSION_LABELS.map(([s, n]) => {
          const on = it.permissions[s]?.[n] === true;
          const via = it.permission_via[`${s}.${n}`] ?? [];
          return (
            <td key={`${s}.${n}`} className="center" title={via.join(', ')}>
              <span aria-label={on ? 'allowed' : 'not allowed'}>{yes(on)}</span>
            </td>
          );
        })}
        <td>
          <button type="button" className="btn btn-small" aria-expanded={open} onClick={onToggle}>
            {it.resources.length}
            {it.resources_truncated ? '+' : ''} resources<span className="sr-only"> of {it.user.email}</span>
          </button>
        </td>
      </tr>
      {open ? (
        <tr className="detail-row">
          <td colSpan={PERMISSION_LABELS.length + 2}>
            {it.resources.length === 0 ? (
              <p>No resources.</p>
            ) : (
              <table className="table compact">
                <thead>
                  <tr>
                    <th scope="col">Resource</th>
                    <th scope="col">Read</th>
                    <th scope="col">Write</th>
                    <th scope="col">Share</th>
                    <th scope="col">Delete</th>
                    <th scope="col">Because</th>
                  </tr>
                </thead>
                <tbody>
                  {it.resources.map((r) => (
                    <tr key={`${r.resource_type}:${r.resource_id}`}>
                      <td className="mono small">
                        {r.resource_type} {r.resource_id}
                      </td>
                      <td className="center">{yes(r.permissions.read)}</td>
                      <td className="center">{yes(r.permissions.write)}</td>
                      <td className="center">{yes(r.permissions.share)}</td>
                      <td className="center">{yes(r.permissions.delete)}</td>
                      <td className="small">{r.via.join(', ')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </td>
        </tr>
      ) : null}
    </>
  );
}
