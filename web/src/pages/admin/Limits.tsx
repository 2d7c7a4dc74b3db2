import { Fragment, useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { api, ApiError, del, get, messageOf } from '../../lib/api';
import { formatDate } from '../../lib/format';
import type { ModelInfo, User } from '../../lib/types';
import { Alert, ConfirmDialog, PageTitle, Spinner } from '../../components/ui';

type Scope = 'user' | 'group' | 'key' | 'model';

export const LIMIT_FIELDS = [
  { key: 'requests_per_minute', label: 'Requests per minute' },
  { key: 'tokens_per_minute', label: 'Tokens per minute' },
  { key: 'concurrent_requests', label: 'Concurrent requests' },
  { key: 'tokens_per_day', label: 'Tokens per day' },
  { key: 'tokens_per_month', label: 'Tokens per month' },
] as const;

type FieldKey = (typeof LIMIT_FIELDS)[number]['key'];
type Values = Record<FieldKey, number | null>;

interface Limit extends Values {
  id: string;
  scope: Scope;
  subject_id: string;
  updated_by: string | null;
  created_at: number;
  updated_at: number;
}

const SCOPES: { value: Scope; label: string; subject: string; hint: string }[] = [
  {
    value: 'user',
    label: 'User',
    subject: 'User',
    hint: 'Replaces the defaults for this user. An empty field takes the value of the user’s groups, then the server default.',
  },
  {
    value: 'group',
    label: 'Group',
    subject: 'Group',
    hint: 'Per-minute and concurrency values are defaults for members without their own (the most generous group wins). Daily and monthly tokens are one budget shared by all members.',
  },
  {
    value: 'key',
    label: 'API key',
    subject: 'API key id',
    hint: 'Applies to requests made with this key, on top of its owner’s limits.',
  },
  {
    value: 'model',
    label: 'Model',
    subject: 'Model id',
    hint: 'Applies to every request for this model, whoever makes it, on top of each user’s limits.',
  },
];

const scopeOf = (s: Scope) => SCOPES.find((x) => x.value === s)!;

/** How a stored value reads: null is "not set" (the default applies), 0 is "no limit". */
function LimitValue({ v, fallback }: { v: number | null; fallback?: string }) {
  if (v === null) return <span className="muted">{fallback ?? 'Default'}</span>;
  if (v === 0) return <span className="badge badge-ok">No limit</span>;
  return <>{v.toLocaleString()}</>;
}

const emptyForm = (): { scope: Scope; subject_id: string; values: Record<FieldKey, string> } => ({
  scope: 'user',
  subject_id: '',
  values: {
    requests_per_minute: '',
    tokens_per_minute: '',
    concurrent_requests: '',
    tokens_per_day: '',
    tokens_per_month: '',
  },
});

/** Gateway limits and token budgets per user, group, API key or model. */
export function LimitsSection() {
  const [items, setItems] = useState<Limit[] | null>(null);
  const [defaults, setDefaults] = useState<Values | null>(null);
  const [names, setNames] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [deleting, setDeleting] = useState<Limit | null>(null);
  const [editing, setEditing] = useState<Limit | null>(null);
  /** Bumped after a save: the form starts empty again. */
  const [formKey, setFormKey] = useState(0);

  const load = useCallback(async () => {
    try {
      const r = await get<{ items: Limit[]; defaults: Values }>('/api/v1/gateway/limits');
      setItems(r.items);
      setDefaults(r.defaults);
      // Names for the table: groups in one page, users one by one (admins set few user limits).
      const out: Record<string, string> = {};
      const groups = r.items.some((l) => l.scope === 'group')
        ? await get<{ items: { id: string; name: string }[] }>('/api/v1/groups?limit=100').catch(() => ({ items: [] }))
        : { items: [] };
      for (const g of groups.items) out[`group:${g.id}`] = g.name;
      const userIds = [...new Set(r.items.filter((l) => l.scope === 'user').map((l) => l.subject_id))].slice(0, 100);
      await Promise.all(
        userIds.map(async (id) => {
          const u = await get<User>(`/api/v1/users/${encodeURIComponent(id)}`).catch(() => null);
          if (u) out[`user:${id}`] = `${u.name} (${u.email})`;
        }),
      );
      setNames(out);
    } catch (e) {
      setError(messageOf(e));
      setItems([]);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function remove(l: Limit) {
    setError('');
    setInfo('');
    try {
      await del(`/api/v1/gateway/limits/${encodeURIComponent(l.id)}`);
      setInfo('The limits were removed; the defaults apply again.');
      if (editing?.id === l.id) setEditing(null);
    } catch (e) {
      setError(messageOf(e));
    }
    await load();
  }

  return (
    <>
      <PageTitle>Limits and budgets</PageTitle>
      <p>
        How many requests and tokens the model gateway accepts. In every field, <strong>empty</strong> means not set
        here (the default applies) and <strong>0</strong> means no limit. A request is refused when any limit that
        applies to it is reached.
      </p>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {defaults ? (
        <section aria-labelledby="limits-defaults">
          <h2 id="limits-defaults">Defaults for every user</h2>
          <dl className="facts">
            {LIMIT_FIELDS.map((f) => (
              <Fragment key={f.key}>
                <dt>{f.label}</dt>
                <dd>
                  <LimitValue v={defaults[f.key]} />
                </dd>
              </Fragment>
            ))}
          </dl>
          <p className="muted small">Set by the server’s configuration (GATEWAY_USER_… settings).</p>
        </section>
      ) : null}
      <h2>Limits set here</h2>
      {items === null ? (
        <Spinner label="Loading limits" />
      ) : items.length === 0 ? (
        <p>No limits yet: the defaults apply to everyone.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Applies to</th>
                {LIMIT_FIELDS.map((f) => (
                  <th scope="col" key={f.key}>
                    {f.label}
                  </th>
                ))}
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((l) => {
                const name = names[`${l.scope}:${l.subject_id}`];
                const label = `${scopeOf(l.scope).label} ${name ?? l.subject_id}`;
                return (
                  <tr key={l.id} data-limit={l.id}>
                    <td>
                      <div className="cell-title">
                        <span className="badge">{scopeOf(l.scope).label}</span> {name ?? ''}
                      </div>
                      <div className="cell-sub mono">{l.subject_id}</div>
                      <div className="cell-sub">changed {formatDate(l.updated_at)}</div>
                    </td>
                    {LIMIT_FIELDS.map((f) => (
                      <td key={f.key} data-col={f.key}>
                        <LimitValue v={l[f.key]} fallback={l.scope === 'user' ? 'Default' : 'Not set'} />
                      </td>
                    ))}
                    <td className="actions">
                      <button type="button" className="btn btn-small" onClick={() => setEditing(l)}>
                        Edit<span className="sr-only"> {label}</span>
                      </button>
                      <button type="button" className="btn btn-small btn-danger-outline" onClick={() => setDeleting(l)}>
                        Remove<span className="sr-only"> {label}</span>
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <LimitForm
        key={editing?.id ?? `new-${formKey}`}
        editing={editing}
        editingName={editing ? names[`${editing.scope}:${editing.subject_id}`] : undefined}
        onCancel={() => setEditing(null)}
        onSaved={(msg) => {
          setEditing(null);
          setFormKey((n) => n + 1);
          setError('');
          setInfo(msg);
          void load();
        }}
      />
      <ConfirmDialog
        open={deleting !== null}
        danger
        title="Remove these limits?"
        confirmLabel="Remove"
        onCancel={() => setDeleting(null)}
        onConfirm={() => {
          const l = deleting!;
          setDeleting(null);
          void remove(l);
        }}
      >
        {deleting ? `${scopeOf(deleting.scope).label} ${deleting.subject_id}: ` : ''}the defaults apply again at once.
      </ConfirmDialog>
    </>
  );
}

interface Issue {
  path: string[];
  message: string;
}

function parseValue(raw: string): number | null | 'invalid' {
  const v = raw.trim().replace(/[\s_,]/g, '');
  if (!v) return null;
  if (!/^-?\d+$/.test(v)) return 'invalid';
  return Number(v);
}

function LimitForm({
  editing,
  editingName,
  onCancel,
  onSaved,
}: {
  editing: Limit | null;
  editingName?: string;
  onCancel: () => void;
  onSaved: (message: string) => void;
}) {
  const [form, setForm] = useState(() =>
    editing
      ? {
          scope: editing.scope,
          subject_id: editing.subject_id,
          values: Object.fromEntries(
            LIMIT_FIELDS.map((f) => [f.key, editing[f.key] === null ? '' : String(editing[f.key])]),
          ) as Record<FieldKey, string>,
        }
      : emptyForm(),
  );
  const [error, setError] = useState('');
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [suggestions, setSuggestions] = useState<{ value: string; label: string }[]>([]);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const scopeId = useId();
  const subjectId = useId();
  const listId = useId();
  const errorsId = useId();
  const scope = scopeOf(form.scope);

  useEffect(() => {
    if (editing) headingRef.current?.focus();
  }, [editing]);

  // Suggestions for the subject: users matching what was typed, groups, models.
  const userQuery = form.scope === 'user' ? form.subject_id.trim() : '';
  useEffect(() => {
    if (editing || form.scope === 'key') {
      setSuggestions([]);
      return;
    }
    const ctl = new AbortController();
    const t = setTimeout(() => {
      const p =
        form.scope === 'user'
          ? get<{ items: User[] }>(
              `/api/v1/users?limit=20${userQuery ? `&query=${encodeURIComponent(userQuery)}` : ''}`,
              {
                signal: ctl.signal,
              },
            ).then((r) => r.items.map((u) => ({ value: u.id, label: `${u.name} (${u.email})` })))
          : form.scope === 'group'
            ? get<{ items: { id: string; name: string }[] }>('/api/v1/groups?limit=100', { signal: ctl.signal }).then(
                (r) => r.items.map((g) => ({ value: g.id, label: g.name })),
              )
            : get<{ data: ModelInfo[] }>('/api/models', { signal: ctl.signal }).then((r) =>
                r.data.map((m) => ({ value: m.id, label: m.name ?? m.id })),
              );
      p.then(setSuggestions).catch(() => undefined);
    }, 250);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [editing, form.scope, userQuery]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError('');
    const local: Record<string, string> = {};
    const body: Record<string, unknown> = { scope: form.scope, subject_id: form.subject_id.trim() };
    for (const f of LIMIT_FIELDS) {
      const v = parseValue(form.values[f.key]);
      if (v === 'invalid') local[f.key] = 'Enter a whole number: 0 for no limit, or leave empty for the default.';
      else body[f.key] = v;
    }
    setFieldErrors(local);
    if (Object.keys(local).length) {
      setError('Some values are not whole numbers.');
      return;
    }
    setBusy(true);
    try {
      await api('PUT', '/api/v1/gateway/limits', body);
      onSaved(editing ? 'The limits were saved.' : 'The limits were added.');
    } catch (err) {
      setError(messageOf(err));
      const issues = err instanceof ApiError ? (err.details as { issues?: Issue[] } | undefined)?.issues : undefined;
      const byField: Record<string, string> = {};
      for (const i of issues ?? []) if (i.path[0] && !byField[i.path[0]]) byField[i.path[0]] = i.message;
      setFieldErrors(byField);
    } finally {
      setBusy(false);
    }
  }

  const setValue = (k: FieldKey) => (e: { target: { value: string } }) =>
    setForm({ ...form, values: { ...form.values, [k]: e.target.value } });

  return (
    <section className="panel" aria-labelledby={`${errorsId}-title`}>
      <div className="panel-head">
        <h2 id={`${errorsId}-title`} ref={headingRef} tabIndex={-1}>
          {editing
            ? `Edit the limits of ${scope.label.toLowerCase()} ${editingName ?? editing.subject_id}`
            : 'Add limits'}
        </h2>
        {editing ? (
          <button type="button" className="btn btn-small" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
      <form onSubmit={submit} className="stack" noValidate>
        <div className="filters">
          <div className="field">
            <label htmlFor={scopeId}>Applies to</label>
            <select
              id={scopeId}
              value={form.scope}
              disabled={!!editing}
              onChange={(e) => setForm({ ...form, scope: e.target.value as Scope, subject_id: '' })}
            >
              {SCOPES.map((s) => (
                <option key={s.value} value={s.value}>
                  {s.label}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={subjectId}>{scope.subject}</label>
            <input
              id={subjectId}
              name="limit-subject"
              required
              readOnly={!!editing}
              list={suggestions.length ? listId : undefined}
              autoComplete="off"
              value={form.subject_id}
              aria-invalid={fieldErrors.subject_id ? true : undefined}
              aria-describedby={fieldErrors.subject_id ? `${subjectId}-error` : undefined}
              placeholder={form.scope === 'user' ? 'Name or e-mail, then pick' : undefined}
              onChange={(e) => setForm({ ...form, subject_id: e.target.value })}
            />
            {fieldErrors.subject_id ? (
              <p className="field-error" id={`${subjectId}-error`}>
                {fieldErrors.subject_id}
              </p>
            ) : null}
            <datalist id={listId}>
              {suggestions.map((s) => (
                <option key={s.value} value={s.value}>
                  {s.label}
                </option>
              ))}
            </datalist>
          </div>
        </div>
        <p className="hint">{scope.hint}</p>
        <div className="filters">
          {LIMIT_FIELDS.map((f) => (
            <ValueField
              key={f.key}
              name={f.key}
              label={f.label}
              value={form.values[f.key]}
              error={fieldErrors[f.key]}
              onChange={setValue(f.key)}
            />
          ))}
        </div>
        <p className="hint">Empty: not set here (the default applies). 0: no limit.</p>
        <Alert>{error}</Alert>
        <div className="row">
          <button type="submit" className="btn btn-primary" disabled={busy || !form.subject_id.trim()}>
            {editing ? 'Save limits' : 'Add limits'}
          </button>
        </div>
      </form>
    </section>
  );
}

function ValueField({
  name,
  label,
  value,
  error,
  onChange,
}: {
  name: string;
  label: string;
  value: string;
  error?: string;
  onChange: (e: { target: { value: string } }) => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={`limit-${name}`}
        inputMode="numeric"
        autoComplete="off"
        placeholder="Default"
        value={value}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        onChange={onChange}
      />
      {error ? (
        <p className="field-error" id={`${id}-error`}>
          {error}
        </p>
      ) : null}
    </div>
  );
}
