import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { del, get, messageOf, post } from '../../lib/api';
import { formatDate, formatTime } from '../../lib/format';
import type { ApiKeyInfo } from '../../lib/types';
import { Alert, ConfirmDialog, Field, PageTitle, Spinner } from '../../components/ui';

const DAY = 86_400_000;

function splitList(v: string): string[] | null {
  const items = v
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
  return items.length ? items : null;
}

/** Copies text; falls back to selecting the field when the Clipboard API is not available. */
async function copyText(text: string, field: HTMLInputElement | null): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    field?.select();
    return false;
  }
}

/** The new key, shown once: it lives only in this component's state and is gone when dismissed. */
function NewKey({ value, onDone }: { value: { name: string; key: string }; onDone: () => void }) {
  const ref = useRef<HTMLInputElement>(null);
  const [status, setStatus] = useState('');
  const id = useId();
  useEffect(() => {
    ref.current?.focus();
    ref.current?.select();
  }, []);
  return (
    <section className="panel new-key" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Your new key “{value.name}”</h2>
      <p>
        Copy it now and keep it somewhere safe. <strong>It will not be shown again</strong>: HridaAI stores only a
        fingerprint of it.
      </p>
      <div className="copy-row">
        <label htmlFor={id} className="sr-only">
          New API key
        </label>
        <input id={id} ref={ref} className="mono" readOnly value={value.key} spellCheck={false} autoComplete="off" />
        <button
          type="button"
          className="btn btn-primary"
          onClick={async () =>
            setStatus(
              (await copyText(value.key, ref.current)) ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C to copy.',
            )
          }
        >
          Copy
        </button>
      </div>
      <p className="muted small" role="status">
        {status}
      </p>
      <div className="row">
        <button type="button" className="btn" onClick={onDone}>
          I have saved the key
        </button>
      </div>
    </section>
  );
}

export function ApiKeysSection() {
  const [keys, setKeys] = useState<ApiKeyInfo[] | null>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null);
  const [confirm, setConfirm] = useState<{ kind: 'revoke' | 'rotate'; key: ApiKeyInfo } | null>(null);
  const [name, setName] = useState('');
  const [expiry, setExpiry] = useState('90');
  const [models, setModels] = useState('');
  const [endpoints, setEndpoints] = useState('');
  const expiryId = useId();

  const load = useCallback(async () => {
    try {
      setKeys((await get<{ items: ApiKeyInfo[] }>('/api/v1/api-keys')).items);
    } catch (e) {
      setError(messageOf(e));
      setKeys([]);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function create(e: FormEvent) {
    e.preventDefault();
    setError('');
    setInfo('');
    setBusy(true);
    try {
      const r = await post<ApiKeyInfo & { key: string }>('/api/v1/api-keys', {
        name: name.trim(),
        expires_at: expiry === 'never' ? null : Date.now() + Number(expiry) * DAY,
        allowed_models: splitList(models),
        allowed_endpoints: splitList(endpoints),
      });
      setCreated({ name: r.name, key: r.key });
      setName('');
      setModels('');
      setEndpoints('');
      await load();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  async function act(kind: 'revoke' | 'rotate', key: ApiKeyInfo) {
    setConfirm(null);
    setError('');
    setInfo('');
    setBusy(true);
    try {
      if (kind === 'revoke') {
        await del(`/api/v1/api-keys/${encodeURIComponent(key.id)}`);
        setInfo(`The key “${key.name}” was revoked.`);
      } else {
        const r = await post<ApiKeyInfo & { key: string }>(`/api/v1/api-keys/${encodeURIComponent(key.id)}/rotate`);
        setCreated({ name: r.name, key: r.key });
      }
      await load();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <PageTitle>API keys</PageTitle>
      <p>
        Programs use API keys to call HridaAI’s OpenAI-compatible API as you (header{' '}
        <code>Authorization: Bearer sk-…</code>). A key can do what your account can do, within the limits you set here.
      </p>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {created ? <NewKey value={created} onDone={() => setCreated(null)} /> : null}

      <h2>Create a key</h2>
      <form onSubmit={create} className="stack narrow">
        <Field
          label="Name"
          name="key-name"
          required
          maxLength={200}
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <div className="field">
          <label htmlFor={expiryId}>Expires</label>
          <select id={expiryId} value={expiry} onChange={(e) => setExpiry(e.target.value)}>
            <option value="7">In 7 days</option>
            <option value="30">In 30 days</option>
            <option value="90">In 90 days</option>
            <option value="365">In a year</option>
            <option value="never">Never</option>
          </select>
        </div>
        <Field
          label="Only these models (optional)"
          name="key-models"
          value={models}
          hint="Model ids separated by commas. Empty: every model you may use."
          onChange={(e) => setModels(e.target.value)}
        />
        <Field
          label="Only these endpoints (optional)"
          name="key-endpoints"
          value={endpoints}
          hint="Paths such as /api/chat/completions, separated by commas. Empty: every endpoint."
          onChange={(e) => setEndpoints(e.target.value)}
        />
        <div className="row">
          <button type="submit" className="btn btn-primary" disabled={busy || !name.trim()}>
            Create key
          </button>
        </div>
      </form>

      <h2>Your keys</h2>
      {keys === null ? (
        <Spinner label="Loading keys" />
      ) : keys.length === 0 ? (
        <p>You have no API keys.</p>
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
                <th scope="col">Limits</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => {
                const expired = k.expires_at !== null && k.expires_at <= Date.now();
                return (
                  <tr key={k.id}>
                    <td className="cell-title">{k.name}</td>
                    <td className="mono small">
                      {k.prefix}…{k.hint}
                    </td>
                    <td title={formatTime(k.created_at)}>{formatDate(k.created_at)}</td>
                    <td title={formatTime(k.last_used_at)}>{k.last_used_at ? formatDate(k.last_used_at) : 'Never'}</td>
                    <td title={formatTime(k.expires_at)}>
                      {k.expires_at === null ? 'Never' : formatDate(k.expires_at)}
                      {expired ? <span className="badge badge-bad">Expired</span> : null}
                    </td>
                    <td className="small">
                      {k.allowed_models ? `Models: ${k.allowed_models.join(', ')}` : 'All models'}
                      <br />
                      {k.allowed_endpoints ? `Endpoints: ${k.allowed_endpoints.join(', ')}` : 'All endpoints'}
                    </td>
                    <td className="actions">
                      <button
                        type="button"
                        className="btn btn-small"
                        disabled={busy}
                        onClick={() => setConfirm({ kind: 'rotate', key: k })}
                      >
                        Rotate<span className="sr-only"> key {k.name}</span>
                      </button>
                      <button
                        type="button"
                        className="btn btn-small btn-danger-outline"
                        disabled={busy}
                        onClick={() => setConfirm({ kind: 'revoke', key: k })}
                      >
                        Revoke<span className="sr-only"> key {k.name}</span>
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={confirm !== null}
        danger={confirm?.kind === 'revoke'}
        title={confirm?.kind === 'revoke' ? `Revoke “${confirm.key.name}”?` : `Rotate “${confirm?.key.name ?? ''}”?`}
        confirmLabel={confirm?.kind === 'revoke' ? 'Revoke' : 'Rotate'}
        onCancel={() => setConfirm(null)}
        onConfirm={() => confirm && void act(confirm.kind, confirm.key)}
      >
        {confirm?.kind === 'revoke'
          ? 'Programs using this key stop working at once.'
          : 'A new secret replaces the old one, which stops working at once. The new key is shown once.'}
      </ConfirmDialog>
    </>
  );
}
