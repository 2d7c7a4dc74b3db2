import { useCallback, useEffect, useRef, useState, type ChangeEvent, type FormEvent } from 'react';
import { del, errorFromBody, get, messageOf, post } from '../../lib/api';
import { formatDate } from '../../lib/format';
import { GrantEditor } from '../../components/GrantEditor';
import { Alert, ConfirmDialog, Field, PageTitle, Spinner } from '../../components/ui';

interface KnowledgeBase {
  id: string;
  user_id: string;
  name: string;
  description: string;
  updated_at: number;
}

interface KnowledgeDetail extends KnowledgeBase {
  documents: {
    id: string;
    source_type: string;
    url: string | null;
    title: string;
    size: number;
    chunk_count: number;
    created_at: number;
  }[];
  permissions: { read: boolean; write: boolean; share: boolean; delete: boolean };
}

/** Uploads one file (multipart, same origin, the session cookie) and returns its id. */
async function uploadFile(file: File): Promise<string> {
  const body = new FormData();
  body.append('file', file, file.name);
  const res = await fetch('/api/v1/files', { method: 'POST', body, credentials: 'same-origin' });
  const data: unknown = await res.json().catch(() => undefined);
  if (!res.ok) throw errorFromBody(res.status, res.statusText, data);
  return (data as { id: string }).id;
}

export function KnowledgeSection() {
  const [items, setItems] = useState<KnowledgeBase[] | null>(null);
  const [error, setError] = useState('');
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [open, setOpen] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setItems((await get<{ items: KnowledgeBase[] }>('/api/v1/knowledge')).items);
    } catch (e) {
      setError(messageOf(e));
      setItems([]);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function create(e: FormEvent) {
    e.preventDefault();
    setError('');
    try {
      const kb = await post<KnowledgeBase>('/api/v1/knowledge', { name: name.trim(), description });
      setName('');
      setDescription('');
      setOpen(kb.id);
      await load();
    } catch (err) {
      setError(messageOf(err));
    }
  }

  return (
    <>
      <PageTitle>Knowledge</PageTitle>
      <p>Collections of documents and web pages that chats can draw on.</p>
      <Alert>{error}</Alert>
      {items === null ? (
        <Spinner label="Loading knowledge bases" />
      ) : items.length === 0 ? (
        <p>No knowledge bases yet.</p>
      ) : (
        <ul className="cards">
          {items.map((kb) => (
            <li key={kb.id} className="card">
              <div className="card-head">
                <div>
                  <div className="cell-title">{kb.name}</div>
                  <div className="cell-sub">
                    {kb.description || 'No description'} · updated {formatDate(kb.updated_at)}
                  </div>
                </div>
                <button
                  type="button"
                  className="btn btn-small"
                  aria-expanded={open === kb.id}
                  onClick={() => setOpen(open === kb.id ? null : kb.id)}
                >
                  Open<span className="sr-only"> {kb.name}</span>
                </button>
              </div>
              {open === kb.id ? (
                <KnowledgeEditor
                  id={kb.id}
                  onDeleted={() => {
                    setOpen(null);
                    void load();
                  }}
                />
              ) : null}
            </li>
          ))}
        </ul>
      )}
      <h2>New knowledge base</h2>
      <form onSubmit={create} className="stack narrow">
        <Field label="Name" name="kb-name" required value={name} onChange={(e) => setName(e.target.value)} />
        <Field
          label="Description"
          name="kb-description"
          value={description}
          onChange={(e) => setDescription(e.target.value)}
        />
        <div className="row">
          <button type="submit" className="btn btn-primary" disabled={!name.trim()}>
            Create knowledge base
          </button>
        </div>
      </form>
    </>
  );
}

function KnowledgeEditor({ id, onDeleted }: { id: string; onDeleted: () => void }) {
  const [kb, setKb] = useState<KnowledgeDetail | null>(null);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [busy, setBusy] = useState(false);
  const [url, setUrl] = useState('');
  const [confirm, setConfirm] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);
  const base = `/api/v1/knowledge/${encodeURIComponent(id)}`;

  const load = useCallback(async () => {
    try {
      setKb(await get<KnowledgeDetail>(base));
    } catch (e) {
      setError(messageOf(e));
    }
  }, [base]);

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

  function pick(e: ChangeEvent<HTMLInputElement>) {
    const files = [...(e.target.files ?? [])];
    e.target.value = '';
    if (!files.length) return;
    void run(
      async () => {
        for (const f of files) await post(`${base}/files`, { file_id: await uploadFile(f) });
      },
      files.length === 1 ? `${files[0]!.name} was added.` : `${files.length} files were added.`,
    );
  }

  if (!kb) return <div className="card-body">{error ? <Alert>{error}</Alert> : <Spinner label="Loading" />}</div>;
  return (
    <div className="card-body">
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      <h3>Documents ({kb.documents.length})</h3>
      {kb.documents.length === 0 ? (
        <p className="muted">No documents.</p>
      ) : (
        <ul className="plain-list">
          {kb.documents.map((d) => (
            <li key={d.id}>
              <span>
                {d.title}
                {d.url ? <span className="muted small"> · {d.url}</span> : null}
                <span className="muted small"> · {d.chunk_count} parts</span>
              </span>
              {kb.permissions.write ? (
                <button
                  type="button"
                  className="btn btn-small btn-danger-outline"
                  disabled={busy}
                  onClick={() =>
                    void run(() => del(`${base}/documents/${encodeURIComponent(d.id)}`), 'Document removed.')
                  }
                >
                  Remove<span className="sr-only"> {d.title}</span>
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      {kb.permissions.write ? (
        <>
          <input
            ref={fileRef}
            type="file"
            multiple
            className="sr-only"
            tabIndex={-1}
            aria-hidden="true"
            onChange={pick}
          />
          <div className="row tight">
            <button type="button" className="btn btn-small" disabled={busy} onClick={() => fileRef.current?.click()}>
              Add files
            </button>
          </div>
          <form
            className="field inline"
            onSubmit={(e) => {
              e.preventDefault();
              void run(async () => {
                await post(`${base}/web`, { url: url.trim() });
                setUrl('');
              }, 'The page was added.');
            }}
          >
            <label htmlFor={`${id}-url`}>Add a web page</label>
            <input id={`${id}-url`} type="url" value={url} onChange={(e) => setUrl(e.target.value)} />
            <button type="submit" className="btn btn-small" disabled={busy || !url.trim()}>
              Add page
            </button>
          </form>
        </>
      ) : null}
      {kb.permissions.share ? <GrantEditor type="knowledge" id={kb.id} name={kb.name} /> : null}
      {kb.permissions.delete ? (
        <div className="row">
          <button type="button" className="btn btn-danger-outline" onClick={() => setConfirm(true)}>
            Delete knowledge base
          </button>
        </div>
      ) : null}
      <ConfirmDialog
        open={confirm}
        danger
        title={`Delete “${kb.name}”?`}
        confirmLabel="Delete"
        onCancel={() => setConfirm(false)}
        onConfirm={() => {
          setConfirm(false);
          void run(async () => {
            await del(base);
            onDeleted();
          }, 'Deleted.');
        }}
      />
    </div>
  );
}
