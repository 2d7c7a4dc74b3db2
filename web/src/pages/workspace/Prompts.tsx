import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { del, get, messageOf, patch, post } from '../../lib/api';
import { GrantEditor } from '../../components/GrantEditor';
import { Alert, ConfirmDialog, Field, PageTitle, Spinner } from '../../components/ui';

interface Prompt {
  id: string;
  user_id: string;
  command: string;
  title: string;
  content: string;
  updated_at: number;
}

interface PromptDetail extends Prompt {
  permissions: { read: boolean; write: boolean; share: boolean; delete: boolean };
}

export function PromptsSection() {
  const [items, setItems] = useState<Prompt[] | null>(null);
  const [error, setError] = useState('');
  const [command, setCommand] = useState('');
  const [title, setTitle] = useState('');
  const [content, setContent] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const contentId = useId();

  const load = useCallback(async () => {
    try {
      setItems((await get<{ items: Prompt[] }>('/api/v1/prompts')).items);
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
      const p = await post<Prompt>('/api/v1/prompts', { command: command.trim(), title: title.trim(), content });
      setCommand('');
      setTitle('');
      setContent('');
      setOpen(p.id);
      await load();
    } catch (err) {
      setError(messageOf(err));
    }
  }

  return (
    <>
      <PageTitle>Prompts</PageTitle>
      <p>Reusable prompts: type their command after a slash in a chat.</p>
      <Alert>{error}</Alert>
      {items === null ? (
        <Spinner label="Loading prompts" />
      ) : items.length === 0 ? (
        <p>No prompts yet.</p>
      ) : (
        <ul className="cards">
          {items.map((p) => (
            <li key={p.id} className="card">
              <div className="card-head">
                <div>
                  <div className="cell-title">/{p.command}</div>
                  <div className="cell-sub">{p.title}</div>
                </div>
                <button
                  type="button"
                  className="btn btn-small"
                  aria-expanded={open === p.id}
                  onClick={() => setOpen(open === p.id ? null : p.id)}
                >
                  Open<span className="sr-only"> /{p.command}</span>
                </button>
              </div>
              {open === p.id ? (
                <PromptEditor
                  id={p.id}
                  onChanged={() => void load()}
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
      <h2>New prompt</h2>
      <form onSubmit={create} className="stack narrow">
        <Field
          label="Command"
          name="prompt-command"
          required
          hint="Letters, digits, - and _; used as /command in a chat."
          value={command}
          onChange={(e) => setCommand(e.target.value)}
        />
        <Field label="Title" name="prompt-title" required value={title} onChange={(e) => setTitle(e.target.value)} />
        <div className="field">
          <label htmlFor={contentId}>Prompt text</label>
          <textarea id={contentId} rows={5} required value={content} onChange={(e) => setContent(e.target.value)} />
        </div>
        <div className="row">
          <button
            type="submit"
            className="btn btn-primary"
            disabled={!command.trim() || !title.trim() || !content.trim()}
          >
            Create prompt
          </button>
        </div>
      </form>
    </>
  );
}

function PromptEditor({ id, onChanged, onDeleted }: { id: string; onChanged: () => void; onDeleted: () => void }) {
  const [p, setP] = useState<PromptDetail | null>(null);
  const [title, setTitle] = useState('');
  const [content, setContent] = useState('');
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [confirm, setConfirm] = useState(false);
  const contentId = useId();
  const base = `/api/v1/prompts/${encodeURIComponent(id)}`;

  const load = useCallback(async () => {
    try {
      const d = await get<PromptDetail>(base);
      setP(d);
      setTitle(d.title);
      setContent(d.content);
    } catch (e) {
      setError(messageOf(e));
    }
  }, [base]);

  useEffect(() => {
    void load();
  }, [load]);

  async function save(e: FormEvent) {
    e.preventDefault();
    setError('');
    setInfo('');
    try {
      await patch(base, { title: title.trim(), content });
      setInfo('Saved.');
      onChanged();
      await load();
    } catch (err) {
      setError(messageOf(err));
    }
  }

  if (!p) return <div className="card-body">{error ? <Alert>{error}</Alert> : <Spinner label="Loading" />}</div>;
  return (
    <div className="card-body">
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {p.permissions.write ? (
        <form onSubmit={save} className="stack">
          <Field label="Title" name={`title-${id}`} required value={title} onChange={(e) => setTitle(e.target.value)} />
          <div className="field">
            <label htmlFor={contentId}>Prompt text</label>
            <textarea id={contentId} rows={5} value={content} onChange={(e) => setContent(e.target.value)} />
          </div>
          <div className="row">
            <button type="submit" className="btn btn-small" disabled={!title.trim() || !content.trim()}>
              Save prompt
            </button>
          </div>
        </form>
      ) : (
        <pre className="prompt-content">{p.content}</pre>
      )}
      {p.permissions.share ? <GrantEditor type="prompt" id={p.id} name={`/${p.command}`} /> : null}
      {p.permissions.delete ? (
        <div className="row">
          <button type="button" className="btn btn-danger-outline" onClick={() => setConfirm(true)}>
            Delete prompt
          </button>
        </div>
      ) : null}
      <ConfirmDialog
        open={confirm}
        danger
        title={`Delete /${p.command}?`}
        confirmLabel="Delete"
        onCancel={() => setConfirm(false)}
        onConfirm={() => {
          setConfirm(false);
          void del(base)
            .then(onDeleted)
            .catch((e: unknown) => setError(messageOf(e)));
        }}
      />
    </div>
  );
}
