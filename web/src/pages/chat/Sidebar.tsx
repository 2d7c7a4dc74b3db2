import { useId, useState, type ReactNode } from 'react';
import { del, messageOf, post } from '../../lib/api';
import type { ChatSummary, Folder } from '../../lib/types';
import { Alert, ConfirmDialog } from '../../components/ui';

function ChatList({
  items,
  activeId,
  onOpen,
}: {
  items: ChatSummary[];
  activeId: string | null;
  onOpen: (id: string) => void;
}) {
  return (
    <ul className="chat-list">
      {items.map((c) => (
        <li key={c.id}>
          <button
            type="button"
            className="chat-list-item"
            aria-current={c.id === activeId ? 'true' : undefined}
            title={c.title}
            onClick={() => onOpen(c.id)}
          >
            {c.pinned ? (
              <span className="pin" aria-label="Pinned">
                ★{' '}
              </span>
            ) : null}
            {c.title}
          </button>
        </li>
      ))}
    </ul>
  );
}

function Group({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className="chat-group" aria-label={title}>
      <h2 className="chat-group-title">{title}</h2>
      {children}
    </section>
  );
}

/** Chat history: search, pinned chats, folders, the rest; archived chats on their own view. */
export function ChatSidebar({
  open,
  persist,
  chats,
  folders,
  activeId,
  archivedView,
  search,
  onSearch,
  onArchivedView,
  onNewChat,
  onOpen,
  onFoldersChanged,
}: {
  open: boolean;
  persist: boolean | null;
  chats: ChatSummary[];
  folders: Folder[];
  activeId: string | null;
  archivedView: boolean;
  search: string;
  onSearch: (q: string) => void;
  onArchivedView: (v: boolean) => void;
  onNewChat: () => void;
  onOpen: (id: string) => void;
  onFoldersChanged: () => Promise<void>;
}) {
  const searchId = useId();
  const folderInputId = useId();
  const [newFolder, setNewFolder] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [deleting, setDeleting] = useState<Folder | null>(null);

  async function createFolder() {
    if (!newFolder?.trim()) return;
    setError('');
    try {
      await post('/api/v1/folders', { name: newFolder.trim() });
      setNewFolder(null);
      await onFoldersChanged();
    } catch (e) {
      setError(messageOf(e));
    }
  }

  async function deleteFolder(f: Folder) {
    setDeleting(null);
    setError('');
    try {
      await del(`/api/v1/folders/${encodeURIComponent(f.id)}`);
      await onFoldersChanged();
    } catch (e) {
      setError(messageOf(e));
    }
  }

  const searching = search.trim() !== '';
  const pinned = chats.filter((c) => c.pinned);
  const rest = chats.filter(
    (c) => !c.pinned && (archivedView || !c.folder_id || !folders.some((f) => f.id === c.folder_id)),
  );

  return (
    <aside className={`chat-sidebar ${open ? 'open' : ''}`} aria-label="Chats">
      <button type="button" className="btn btn-primary btn-block" onClick={onNewChat}>
        New chat
      </button>
      {persist === false ? (
        <p className="muted small">Chat history is not available on this server.</p>
      ) : (
        <>
          <div className="field">
            <label htmlFor={searchId} className="sr-only">
              Search chats
            </label>
            <input
              id={searchId}
              type="search"
              placeholder="Search chats"
              value={search}
              onChange={(e) => onSearch(e.target.value)}
            />
          </div>
          <div className="segmented" role="group" aria-label="Which chats">
            <button type="button" aria-pressed={!archivedView} onClick={() => onArchivedView(false)}>
              Chats
            </button>
            <button type="button" aria-pressed={archivedView} onClick={() => onArchivedView(true)}>
              Archived
            </button>
          </div>
          <Alert>{error}</Alert>
          {chats.length === 0 ? (
            <p className="muted small">
              {searching ? 'No chat matches.' : archivedView ? 'No archived chats.' : 'Your chats appear here.'}
            </p>
          ) : searching || archivedView ? (
            <ChatList items={chats} activeId={activeId} onOpen={onOpen} />
          ) : (
            <>
              {pinned.length ? (
                <Group title="Pinned">
                  <ChatList items={pinned} activeId={activeId} onOpen={onOpen} />
                </Group>
              ) : null}
              {folders.map((f) => {
                const inFolder = chats.filter((c) => !c.pinned && c.folder_id === f.id);
                return (
                  <details key={f.id} className="folder" open>
                    <summary>
                      <span className="folder-name">{f.name}</span>
                      <span className="muted small"> ({inFolder.length})</span>
                    </summary>
                    {inFolder.length ? (
                      <ChatList items={inFolder} activeId={activeId} onOpen={onOpen} />
                    ) : (
                      <p className="muted small">Empty. Move a chat here from its options.</p>
                    )}
                    <button type="button" className="link-btn small" onClick={() => setDeleting(f)}>
                      Delete folder<span className="sr-only"> {f.name}</span>
                    </button>
                  </details>
                );
              })}
              {rest.length ? (
                <Group title="Recent">
                  <ChatList items={rest} activeId={activeId} onOpen={onOpen} />
                </Group>
              ) : null}
            </>
          )}
          {!archivedView ? (
            newFolder === null ? (
              <button type="button" className="btn btn-ghost btn-small" onClick={() => setNewFolder('')}>
                New folder
              </button>
            ) : (
              <form
                className="stack tight"
                onSubmit={(e) => {
                  e.preventDefault();
                  void createFolder();
                }}
              >
                <label htmlFor={folderInputId}>Folder name</label>
                <input
                  id={folderInputId}
                  value={newFolder}
                  maxLength={200}
                  autoFocus
                  onChange={(e) => setNewFolder(e.target.value)}
                  onKeyDown={(e) => {
                    if (e.key === 'Escape') setNewFolder(null);
                  }}
                />
                <div className="row tight">
                  <button type="submit" className="btn btn-small btn-primary" disabled={!newFolder.trim()}>
                    Create folder
                  </button>
                  <button type="button" className="btn btn-small" onClick={() => setNewFolder(null)}>
                    Cancel
                  </button>
                </div>
              </form>
            )
          ) : null}
        </>
      )}
      <ConfirmDialog
        open={deleting !== null}
        danger
        title={`Delete the folder “${deleting?.name ?? ''}”?`}
        confirmLabel="Delete folder"
        onCancel={() => setDeleting(null)}
        onConfirm={() => deleting && void deleteFolder(deleting)}
      >
        Its chats are kept, outside any folder.
      </ConfirmDialog>
    </aside>
  );
}
