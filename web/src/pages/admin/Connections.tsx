import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { del, get, messageOf, patch, post } from '../../lib/api';
import { formatDate } from '../../lib/format';
import { Alert, ConfirmDialog, Field, PageTitle, Spinner } from '../../components/ui';

interface Connection {
  id: string;
  type: 'openai' | 'ollama';
  name: string;
  base_url: string;
  /** "********" when a key is stored; the key itself never leaves the server. */
  api_key: string | null;
  headers: Record<string, string>;
  prefix_id: string | null;
  model_ids: string[];
  enabled: boolean;
  created_at: number;
  updated_at: number;
}

interface TestResult {
  ok: boolean;
  models?: number;
  error?: string;
  latency_ms: number;
}

function ids(v: string): string[] {
  return v
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/** Model servers (OpenAI-compatible or Ollama). Secrets are write-only: shown masked, replaced, never read back. */
export function ConnectionsSection() {
  const [items, setItems] = useState<Connection[] | null>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [tests, setTests] = useState<Record<string, TestResult | 'running'>>({});
  const [editing, setEditing] = useState<Connection | null>(null);
  const [deleting, setDeleting] = useState<Connection | null>(null);
  const [form, setForm] = useState({
    type: 'openai',
    name: '',
    base_url: '',
    api_key: '',
    prefix_id: '',
    model_ids: '',
  });
  const typeId = useId();

  const load = useCallback(async () => {
    try {
      setItems((await get<{ items: Connection[] }>('/api/v1/connections')).items);
    } catch (e) {
      setError(messageOf(e));
      setItems([]);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function run(action: () => Promise<unknown>, done: string) {
    setError('');
    setInfo('');
    setBusy(true);
    try {
      await action();
      setInfo(done);
      await load();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  async function test(c: Connection) {
    setTests((t) => ({ ...t, [c.id]: 'running' }));
    try {
      const r = await post<TestResult>(`/api/v1/connections/${encodeURIComponent(c.id)}/test`);
      setTests((t) => ({ ...t, [c.id]: r }));
    } catch (e) {
      setTests((t) => ({ ...t, [c.id]: { ok: false, error: messageOf(e), latency_ms: 0 } }));
    }
  }

  function create(e: FormEvent) {
    e.preventDefault();
    void run(async () => {
      await post('/api/v1/connections', {
        type: form.type,
        name: form.name.trim(),
        base_url: form.base_url.trim(),
        ...(form.api_key ? { api_key: form.api_key } : {}),
        ...(form.prefix_id.trim() ? { prefix_id: form.prefix_id.trim() } : {}),
        ...(form.model_ids.trim() ? { model_ids: ids(form.model_ids) } : {}),
      });
      setForm({ type: 'openai', name: '', base_url: '', api_key: '', prefix_id: '', model_ids: '' });
    }, 'Connection added.');
  }

  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  return (
    <>
      <PageTitle>Connections</PageTitle>
      <p>The model servers HridaAI talks to. Keys and header values are encrypted at rest and never shown again.</p>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {items === null ? (
        <Spinner label="Loading connections" />
      ) : items.length === 0 ? (
        <p>No connections yet: add one below.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Connection</th>
                <th scope="col">Key</th>
                <th scope="col">Models</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((c) => {
                const t = tests[c.id];
                return (
                  <tr key={c.id}>
                    <td>
                      <div className="cell-title">
                        {c.name} <span className="badge badge-warn">{c.type}</span>
                      </div>
                      <div className="cell-sub mono">{c.base_url}</div>
                      <div className="cell-sub">
                        {c.prefix_id ? `Prefix ${c.prefix_id} · ` : ''}added {formatDate(c.created_at)}
                      </div>
                    </td>
                    <td className="mono small">{c.api_key ?? 'none'}</td>
                    <td className="small">{c.model_ids.length ? c.model_ids.join(', ') : 'Discovered'}</td>
                    <td>
                      {c.enabled ? (
                        <span className="badge badge-ok">Enabled</span>
                      ) : (
                        <span className="badge badge-bad">Disabled</span>
                      )}
                      <div className="small" role="status">
                        {t === 'running'
                          ? 'Testing…'
                          : t
                            ? t.ok
                              ? `OK: ${t.models ?? 0} models, ${t.latency_ms} ms`
                              : `Failed: ${t.error ?? 'unreachable'}`
                            : ''}
                      </div>
                    </td>
                    <td className="actions">
                      <button type="button" className="btn btn-small" onClick={() => void test(c)}>
                        Test<span className="sr-only"> {c.name}</span>
                      </button>
                      <button type="button" className="btn btn-small" onClick={() => setEditing(c)}>
                        Edit<span className="sr-only"> {c.name}</span>
                      </button>
                      <button
                        type="button"
                        className="btn btn-small"
                        disabled={busy}
                        onClick={() =>
                          void run(
                            () => patch(`/api/v1/connections/${encodeURIComponent(c.id)}`, { enabled: !c.enabled }),
                            c.enabled ? `${c.name} was disabled.` : `${c.name} was enabled.`,
                          )
                        }
                      >
                        {c.enabled ? 'Disable' : 'Enable'}
                        <span className="sr-only"> {c.name}</span>
                      </button>
                      <button type="button" className="btn btn-small btn-danger-outline" onClick={() => setDeleting(c)}>
                        Delete<span className="sr-only"> {c.name}</span>
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {editing ? (
        <EditConnection
          key={editing.id}
          conn={editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            setInfo('Connection saved.');
            void load();
          }}
        />
      ) : null}
      <h2>Add a connection</h2>
      <form onSubmit={create} className="stack narrow">
        <div className="field">
          <label htmlFor={typeId}>Type</label>
          <select id={typeId} value={form.type} onChange={set('type')}>
            <option value="openai">OpenAI-compatible</option>
            <option value="ollama">Ollama</option>
          </select>
        </div>
        <Field label="Name" name="conn-name" required value={form.name} onChange={set('name')} />
        <Field
          label="Base URL"
          name="conn-url"
          type="url"
          required
          placeholder={form.type === 'openai' ? 'https://api.example.com/v1' : 'http://ollama.internal:11434'}
          value={form.base_url}
          onChange={set('base_url')}
        />
        <Field
          label="API key"
          name="conn-key"
          type="password"
          autoComplete="off"
          value={form.api_key}
          onChange={set('api_key')}
        />
        <Field
          label="Model id prefix (optional)"
          name="conn-prefix"
          value={form.prefix_id}
          hint="Shown before each model id, to tell connections apart."
          onChange={set('prefix_id')}
        />
        <Field
          label="Only these models (optional)"
          name="conn-models"
          value={form.model_ids}
          hint="Model ids separated by commas; empty lists what the server reports."
          onChange={set('model_ids')}
        />
        <div className="row">
          <button
            type="submit"
            className="btn btn-primary"
            disabled={busy || !form.name.trim() || !form.base_url.trim()}
          >
            Add connection
          </button>
        </div>
      </form>
      <ConfirmDialog
        open={deleting !== null}
        danger
        title={`Delete the connection “${deleting?.name ?? ''}”?`}
        confirmLabel="Delete"
        onCancel={() => setDeleting(null)}
        onConfirm={() => {
          const c = deleting!;
          setDeleting(null);
          void run(() => del(`/api/v1/connections/${encodeURIComponent(c.id)}`), `${c.name} was deleted.`);
        }}
      >
        Its models disappear from every user’s model list.
      </ConfirmDialog>
    </>
  );
}

function EditConnection({ conn, onClose, onSaved }: { conn: Connection; onClose: () => void; onSaved: () => void }) {
  const [name, setName] = useState(conn.name);
  const [baseUrl, setBaseUrl] = useState(conn.base_url);
  const [apiKey, setApiKey] = useState('');
  const [clearKey, setClearKey] = useState(false);
  const [prefix, setPrefix] = useState(conn.prefix_id ?? '');
  const [models, setModels] = useState(conn.model_ids.join(', '));
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function save(e: FormEvent) {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      await patch(`/api/v1/connections/${encodeURIComponent(conn.id)}`, {
        name: name.trim(),
        base_url: baseUrl.trim(),
        prefix_id: prefix.trim() || null,
        model_ids: ids(models),
        ...(clearKey ? { api_key: null } : apiKey ? { api_key: apiKey } : {}),
      });
      onSaved();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-label={`Edit ${conn.name}`}>
      <div className="panel-head">
        <h2>Edit {conn.name}</h2>
        <button type="button" className="btn btn-small" onClick={onClose}>
          Close
        </button>
      </div>
      <form onSubmit={save} className="stack narrow">
        <Field label="Name" name="edit-name" required value={name} onChange={(e) => setName(e.target.value)} />
        <Field
          label="Base URL"
          name="edit-url"
          type="url"
          required
          value={baseUrl}
          onChange={(e) => setBaseUrl(e.target.value)}
        />
        <Field
          label="New API key"
          name="edit-key"
          type="password"
          autoComplete="off"
          value={apiKey}
          disabled={clearKey}
          hint={conn.api_key ? 'A key is stored. Leave empty to keep it.' : 'No key is stored.'}
          onChange={(e) => setApiKey(e.target.value)}
        />
        {conn.api_key ? (
          <label className="check">
            <input type="checkbox" checked={clearKey} onChange={(e) => setClearKey(e.target.checked)} /> Remove the
            stored key
          </label>
        ) : null}
        <Field label="Model id prefix" name="edit-prefix" value={prefix} onChange={(e) => setPrefix(e.target.value)} />
        <Field
          label="Only these models"
          name="edit-models"
          value={models}
          onChange={(e) => setModels(e.target.value)}
        />
        <Alert>{error}</Alert>
        <div className="row">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            Save connection
          </button>
        </div>
      </form>
    </section>
  );
}
