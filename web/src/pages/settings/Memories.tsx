import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ApiError, del, get, messageOf, post, api } from '../../lib/api';
import { formatDate } from '../../lib/format';
import { Alert, ConfirmDialog, PageTitle, Spinner } from '../../components/ui';

interface Memory {
  id: string;
  content: string;
  created_at: number;
  updated_at: number;
}

export interface MemorySettings {
  inject_into_chats: boolean;
  permitted: boolean;
}

/** The memories toggle: whether the user's memories are added to their chats. */
export function MemoryToggle({ compact = false }: { compact?: boolean }) {
  const [settings, setSettings] = useState<MemorySettings | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    get<MemorySettings>('/api/v1/memories/settings', { quietAuth: true })
      .then(setSettings)
      .catch(() => setSettings(null));
  }, []);
  if (!settings?.permitted) return null;
  return (
    <>
      <label className={compact ? 'check compact-check' : 'check'}>
        <input
          type="checkbox"
          checked={settings.inject_into_chats}
          onChange={async (e) => {
            const v = e.target.checked;
            setError('');
            try {
              setSettings(await api<MemorySettings>('PUT', '/api/v1/memories/settings', { inject_into_chats: v }));
            } catch (err) {
              setError(messageOf(err));
            }
          }}
        />{' '}
        {compact ? 'Memories' : 'Use my memories in chats'}
      </label>
      {error ? <Alert>{error}</Alert> : null}
    </>
  );
}

export function MemoriesSection() {
  const [items, setItems] = useState<Memory[] | null>(null);
  const [unavailable, setUnavailable] = useState('');
  const [error, setError] = useState('');
  const [text, setText] = useState('');
  const [confirmAll, setConfirmAll] = useState(false);

  const load = useCallback(async () => {
    try {
      setItems((await get<{ items: Memory[] }>('/api/v1/memories?limit=100')).items);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 403 || e.status === 404)) setUnavailable(e.message);
      else setError(messageOf(e));
      setItems([]);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function add(e: FormEvent) {
    e.preventDefault();
    setError('');
    try {
      await post('/api/v1/memories', { content: text.trim() });
      setText('');
      await load();
    } catch (err) {
      setError(messageOf(err));
    }
  }

  async function run(action: () => Promise<unknown>) {
    setError('');
    try {
      await action();
      await load();
    } catch (err) {
      setError(messageOf(err));
    }
  }

  return (
    <>
      <PageTitle>Memories</PageTitle>
      <p>Facts about you that can be added to your chats. Only you can see them.</p>
      {unavailable ? (
        <Alert kind="info">{unavailable}</Alert>
      ) : (
        <>
          <MemoryToggle />
          <Alert>{error}</Alert>
          <form onSubmit={add} className="stack narrow">
            <div className="field">
              <label htmlFor="memory-new">New memory</label>
              <textarea id="memory-new" rows={2} value={text} onChange={(e) => setText(e.target.value)} />
            </div>
            <div className="row tight">
              <button type="submit" className="btn btn-primary" disabled={!text.trim()}>
                Add memory
              </button>
            </div>
          </form>
          {items === null ? (
            <Spinner label="Loading memories" />
          ) : items.length === 0 ? (
            <p>No memories.</p>
          ) : (
            <>
              <ul className="plain-list">
                {items.map((m) => (
                  <li key={m.id}>
                    <span>
                      {m.content} <span className="muted small">· {formatDate(m.updated_at)}</span>
                    </span>
                    <button
                      type="button"
                      className="btn btn-small btn-danger-outline"
                      onClick={() => void run(() => del(`/api/v1/memories/${encodeURIComponent(m.id)}`))}
                    >
                      Delete<span className="sr-only"> memory: {m.content.slice(0, 40)}</span>
                    </button>
                  </li>
                ))}
              </ul>
              <button type="button" className="btn btn-danger-outline" onClick={() => setConfirmAll(true)}>
                Delete all memories
              </button>
            </>
          )}
        </>
      )}
      <ConfirmDialog
        open={confirmAll}
        danger
        title="Delete all your memories?"
        confirmLabel="Delete all"
        onCancel={() => setConfirmAll(false)}
        onConfirm={() => {
          setConfirmAll(false);
          void run(() => del('/api/v1/memories'));
        }}
      />
    </>
  );
}
