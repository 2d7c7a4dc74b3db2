import { useEffect, useId, useState, type ChangeEvent } from 'react';
import { ApiError, errorFromBody, get, messageOf, reportAuthLost } from '../../lib/api';
import type { Citation } from '../../lib/sse';

/** A file or knowledge base attached to the conversation (sent as `files` with each request). */
export interface Attached {
  type: 'file' | 'knowledge';
  id: string;
  name: string;
}

interface KnowledgeItem {
  id: string;
  name: string;
}

/** POST /api/v1/files (multipart, field `file`) with the session cookie. */
async function uploadFile(file: File): Promise<{ id: string; filename: string }> {
  const form = new FormData();
  form.append('file', file, file.name);
  let res: Response;
  try {
    res = await fetch('/api/v1/files', {
      method: 'POST',
      body: form,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { accept: 'application/json' },
    });
  } catch {
    throw new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection and try again.');
  }
  let data: unknown;
  try {
    data = await res.json();
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const err = errorFromBody(res.status, res.statusText, data);
    if (res.status === 401) reportAuthLost(err);
    throw err;
  }
  return data as { id: string; filename: string };
}

/** The composer's attachments: upload files, pick knowledge bases, remove either. */
export function AttachBar({
  attached,
  onChange,
  disabled,
}: {
  attached: Attached[];
  onChange: (next: Attached[]) => void;
  disabled: boolean;
}) {
  const [bases, setBases] = useState<KnowledgeItem[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const fileId = useId();
  const kbId = useId();

  useEffect(() => {
    let cancelled = false;
    get<{ items: KnowledgeItem[] }>('/api/v1/knowledge')
      .then((r) => {
        if (!cancelled) setBases(Array.isArray(r?.items) ? r.items : []);
      })
      .catch(() => {
        if (!cancelled) setBases([]);
      });
    return () => {
      cancelled = true;
    };
  }, []);

  async function onFiles(e: ChangeEvent<HTMLInputElement>) {
    const list = [...(e.target.files ?? [])];
    e.target.value = '';
    if (list.length === 0) return;
    setError('');
    setBusy(true);
    const added: Attached[] = [];
    try {
      for (const f of list) {
        const r = await uploadFile(f);
        added.push({ type: 'file', id: r.id, name: r.filename || f.name });
      }
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
      if (added.length) onChange([...attached, ...added]);
    }
  }

  function addKnowledge(id: string) {
    const kb = bases.find((b) => b.id === id);
    if (!kb || attached.some((a) => a.type === 'knowledge' && a.id === id)) return;
    onChange([...attached, { type: 'knowledge', id: kb.id, name: kb.name }]);
  }

  const freeBases = bases.filter((b) => !attached.some((a) => a.type === 'knowledge' && a.id === b.id));
  return (
    <div className="attach-bar">
      {attached.length ? (
        <ul className="attach-list" aria-label="Attached">
          {attached.map((a) => (
            <li key={`${a.type}:${a.id}`} className="attach-chip">
              <span className="muted small">{a.type === 'file' ? 'File' : 'Knowledge'}:</span> {a.name}
              <button
                type="button"
                className="btn btn-ghost btn-small"
                aria-label={`Remove ${a.name}`}
                onClick={() => onChange(attached.filter((x) => !(x.type === a.type && x.id === a.id)))}
                disabled={disabled}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      <div className="attach-controls">
        <label htmlFor={fileId} className={`btn btn-small${busy || disabled ? ' disabled' : ''}`}>
          {busy ? 'Uploading…' : 'Attach files'}
        </label>
        <input
          id={fileId}
          type="file"
          multiple
          className="sr-only"
          disabled={busy || disabled}
          onChange={(e) => void onFiles(e)}
        />
        {freeBases.length ? (
          <>
            <label htmlFor={kbId} className="sr-only">
              Attach a knowledge base
            </label>
            <select
              id={kbId}
              value=""
              disabled={disabled}
              onChange={(e) => addKnowledge(e.target.value)}
              className="attach-select"
            >
              <option value="">Attach knowledge…</option>
              {freeBases.map((b) => (
                <option key={b.id} value={b.id}>
                  {b.name}
                </option>
              ))}
            </select>
          </>
        ) : null}
        {error ? (
          <span role="alert" className="attach-error small">
            {error}
          </span>
        ) : null}
      </div>
    </div>
  );
}

/** Sources of an answer, as plain text (passages are never rendered as HTML). */
export function Citations({ citations }: { citations: Citation[] }) {
  if (citations.length === 0) return null;
  return (
    <details className="citations" open>
      <summary>Sources ({citations.length})</summary>
      <ol className="citation-list">
        {citations.map((c) => (
          <li key={c.index} value={c.index} className="citation">
            <span className="citation-title">{c.title}</span>
            {c.url ? <span className="muted small"> {c.url}</span> : null}
            <p className="muted small citation-text">{c.text.length > 400 ? `${c.text.slice(0, 399)}…` : c.text}</p>
          </li>
        ))}
      </ol>
    </details>
  );
}
