import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { del, get, messageOf, patch, post } from '../../lib/api';
import { formatDate } from '../../lib/format';
import { Alert, ConfirmDialog, Field, PageTitle, Spinner } from '../../components/ui';

interface DirectConnection {
  id: string;
  type: 'openai' | 'ollama';
  name: string;
  base_url: string;
  /** "********" when a key is stored; the key itself never leaves the server. */
  api_key: string | null;
  model_ids: string[];
  enabled: boolean;
  /** false: the stored key cannot be read any more; set it again. */
  secrets_readable?: boolean;
  created_at: number;
}

interface TestResult {
  ok: boolean;
  models?: number;
  error?: string;
  latency_ms: number;
}

const BASE = '/api/v1/user/connections';
const url = (id: string) => `${BASE}/${encodeURIComponent(id)}`;

function ids(v: string): string[] {
  return v
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/** The user's own model servers (ENABLE_DIRECT_CONNECTIONS): only they see and use them. */
export function DirectConnectionsSection() {
  const [items, setItems] = useState<DirectConnection[] | null>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [formError, setFormError] = useState('');
  const [busy, setBusy] = useState(false);
  const [tests, setTests] = useState<Record<string, TestResult | 'running'>>({});
  const [editing, setEditing] = useState<DirectConnection | null>(null);
  const [deleting, setDeleting] = useState<DirectConnection | null>(null);
  const [form, setForm] = useState({ type: 'openai', name: '', base_url: '', api_key: '', model_ids: '' });
  const typeId = useId();

  const load = useCallback(async () => {
    try {
      setItems((await get<{ items: DirectConnection[] }>(BASE)).items);
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
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
    await load();
  }

  async function test(c: DirectConnection) {
    setTests((t) => ({ ...t, [c.id]: 'running' }));
    try {
      const r = await post<TestResult>(`${url(c.id)}/test`);
      setTests((t) => ({ ...t, [c.id]: r }));
    } catch (e) {
      setTests((t) => ({ ...t, [c.id]: { ok: false, error: messageOf(e), latency_ms: 0 } }));
    }
  }

  async function create(e: FormEvent) {
    e.preventDefault();
    setFormError('');
    setInfo('');
    setBusy(true);
    try {
      await post(BASE, {
        type: form.type,
        name: form.name.trim(),
        base_url: form.base_url.trim(),
        ...(form.api_key ? { api_key: form.api_key } : {}),
        ...(form.model_ids.trim() ? { model_ids: ids(form.model_ids) } : {}),
      });
      setForm({ type: 'openai', name: '', base_url: '', api_key: '', model_ids: '' });
      setInfo('Connection added. Its models are in your model list.');
      await load();
    } catch (err) {
      setFormError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  return (
    <>
      <PageTitle>Your connections</PageTitle>
      <p>
        Model servers of your own (OpenAI-compatible or Ollama), used with your own key. Only you see them and their
        models; the models appear in your model list as <span className="mono">direct/…</span>. Keys are encrypted and
        never shown again.
      </p>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {items === null ? (
        <Spinner label="Loading your connections" />
      ) : items.length === 0 ? (
        <p>You have no connections of your own yet.</p>
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
                  <tr key={c.id} data-connection={c.id}>
                    <td>
                      <div className="cell-title">
                        {c.name} <span className="badge badge-warn">{c.type}</span>
                      </div>
                      <div className="cell-sub mono">{c.base_url}</div>
                      <div className="cell-sub">added {formatDate(c.created_at)}</div>
                    </td>
                    <td className="mono small">
                      {c.api_key ?? 'none'}
                      {c.secrets_readable === false ? (
                        <div className="cell-sub">The stored key cannot be read: set it again.</div>
                      ) : null}
                    </td>
                    <td className="small">{c.model_ids.length ? c.model_ids.join(', ') : 'All it reports'}</td>
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
                            () => patch(url(c.id), { enabled: !c.enabled }),
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
      <form onSubmit={(e) => void create(e)} className="stack narrow">
        <div className="field">
          <label htmlFor={typeId}>Type</label>
          <select id={typeId} value={form.type} onChange={set('type')}>
            <option value="openai">OpenAI-compatible</option>
            <option value="ollama">Ollama</option>
          </select>
        </div>
        <Field label="Name" name="direct-name" required value={form.name} onChange={set('name')} />
        <Field
          label="Base URL"
          name="direct-url"
          type="url"
          required
          placeholder={form.type === 'openai' ? 'https://api.example.com/v1' : 'https://ollama.example.com'}
          hint="The server must be reachable from HridaAI; addresses of the local network may be refused."
          value={form.base_url}
          onChange={set('base_url')}
        />
        <Field
          label="API key"
          name="direct-key"
          type="password"
          autoComplete="off"
          value={form.api_key}
          onChange={set('api_key')}
        />
        <Field
          label="Only these models (optional)"
          name="direct-models"
          value={form.model_ids}
          hint="Model ids separated by commas; empty lists what the server reports."
          onChange={set('model_ids')}
        />
        <Alert>{formError}</Alert>
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
          void run(() => del(url(c.id)), `${c.name} was deleted.`);
        }}
      >
        Its models disappear from your model list; its key is deleted.
      </ConfirmDialog>
    </>
  );
}

function EditConnection({
  conn,
  onClose,
  onSaved,
}: {
  conn: DirectConnection;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [name, setName] = useState(conn.name);
  const [baseUrl, setBaseUrl] = useState(conn.base_url);
  const [apiKey, setApiKey] = useState('');
  const [clearKey, setClearKey] = useState(false);
  const [models, setModels] = useState(conn.model_ids.join(', '));
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function save(e: FormEvent) {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      await patch(url(conn.id), {
        name: name.trim(),
        ...(baseUrl.trim() !== conn.base_url ? { base_url: baseUrl.trim() } : {}),
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
      <form onSubmit={(e) => void save(e)} className="stack narrow">
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
