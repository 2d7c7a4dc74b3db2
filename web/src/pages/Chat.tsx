import { useCallback, useEffect, useId, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { ApiError, del, get, messageOf, patch, post } from '../lib/api';
import { streamChat, type ChatMessage } from '../lib/chat';
import { citationsOf, type Citation } from '../lib/sse';
import {
  execBlocks,
  formatOutputs,
  INTERPRETER_INSTRUCTION,
  isExecutionOutput,
  MAX_ROUNDS,
} from '../lib/code-interpreter';
import { runPython, stopPython } from '../lib/python';
import { navigate } from '../lib/router';
import {
  textOf,
  type ChatDetail,
  type ChatSummary,
  type Folder,
  type ModelInfo,
  type StoredMessage,
} from '../lib/types';
import { Alert, ConfirmDialog, Spinner } from '../components/ui';
import { useSession } from '../components/session';
import { AttachBar, type Attached } from './chat/Attachments';
import { MessageView, toolCallsOf, type ViewMessage } from './chat/MessageView';
import { usePromptMenu } from './chat/PromptMenu';
import { ChatSidebar } from './chat/Sidebar';
import { MemoryToggle } from './settings/Memories';

interface Message extends ViewMessage {
  /** Stored on the server under this id. */
  saved: boolean;
}

interface Active {
  id: string | null;
  title: string;
  messages: Message[];
  pinned: boolean;
  archived: boolean;
  folderId: string | null;
  shareId: string | null;
}

let seq = 0;
const localId = () => `local-${Date.now().toString(36)}-${(seq++).toString(36)}`;

function titleOf(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 60 ? `${t.slice(0, 59)}…` : t || 'New chat';
}

/** What is sent to the model: the conversation without failed or empty answers. */
function toRequestMessages(messages: Message[]): ChatMessage[] {
  return messages
    .filter((m) => !(m.role === 'assistant' && m.content === ''))
    .map((m) => ({ role: m.role, content: m.content }));
}

function fromDetail(c: ChatDetail): Active {
  return {
    id: c.id,
    title: c.title,
    pinned: c.pinned,
    archived: c.archived,
    folderId: c.folder_id,
    shareId: c.share_id,
    messages: c.messages
      .filter((m): m is StoredMessage & { role: 'user' | 'assistant' } => m.role === 'user' || m.role === 'assistant')
      .map((m) => ({
        id: m.id,
        saved: true,
        role: m.role,
        content: textOf(m.content),
        model: m.model ?? undefined,
        execution: m.role === 'user' && isExecutionOutput(textOf(m.content)),
        ...(m.role === 'assistant' && Array.isArray(m.citations) ? { citations: citationsOf(m.citations) } : {}),
        ...(m.role === 'assistant' && Array.isArray(m.tool_calls) ? { toolCalls: toolCallsOf(m.tool_calls) } : {}),
      })),
  };
}

/** Citations as the chat routes accept them (stored with the answer, shown again when the chat is reopened). */
function storableCitations(list: Citation[] | undefined): Citation[] | undefined {
  if (!list?.length) return undefined;
  return list.slice(0, 64).map((c) => ({ ...c, title: c.title.slice(0, 1000), text: c.text.slice(0, 20_000) }));
}

const emptyChat = (): Active => ({
  id: null,
  title: 'New chat',
  messages: [],
  pinned: false,
  archived: false,
  folderId: null,
  shareId: null,
});

export function ChatPage({ chatId }: { chatId: string | null }) {
  const { config } = useSession();
  const canRunCode = config.features.enable_code_execution === true;
  const interpreterAvailable = config.features.enable_code_interpreter === true;
  const [interpreter, setInterpreter] = useState(false);
  // The code interpreter is running an answer's code: a status line, and Send is held.
  const [codeStatus, setCodeStatus] = useState('');
  const codeCancelledRef = useRef(false);
  const [models, setModels] = useState<ModelInfo[] | null>(null);
  const [modelsError, setModelsError] = useState('');
  const [model, setModel] = useState('');
  const [active, setActive] = useState<Active>(emptyChat);
  const [loadError, setLoadError] = useState('');
  const [loading, setLoading] = useState(false);
  const [notice, setNotice] = useState('');
  const [input, setInput] = useState('');
  const [attached, setAttached] = useState<Attached[]>([]);
  const [streamingId, setStreamingId] = useState<string | null>(null);
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const [optionsOpen, setOptionsOpen] = useState(false);
  // Chat history on the server: null while unknown, false when the server has none.
  const [persist, setPersist] = useState<boolean | null>(null);
  const [chats, setChats] = useState<ChatSummary[]>([]);
  const [folders, setFolders] = useState<Folder[]>([]);
  const [archivedView, setArchivedView] = useState(false);
  const [search, setSearch] = useState('');
  const controllerRef = useRef<AbortController | null>(null);
  const currentIdRef = useRef<string | null>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const promptMenu = usePromptMenu(input, setInput, inputRef);
  const modelId = useId();
  const inputId = useId();

  // ---- models
  useEffect(() => {
    let cancelled = false;
    get<{ data: ModelInfo[] }>('/api/models')
      .then((r) => {
        if (cancelled) return;
        const list = Array.isArray(r?.data) ? r.data : [];
        setModels(list);
        setModel((m) => m || list[0]?.id || '');
      })
      .catch((e: unknown) => {
        if (cancelled) return;
        setModels([]);
        setModelsError(
          e instanceof ApiError && e.status === 404
            ? 'No model service is configured on this server yet.'
            : messageOf(e),
        );
      });
    return () => {
      cancelled = true;
      controllerRef.current?.abort();
    };
  }, []);

  // ---- chat list and folders
  const refreshList = useCallback(async () => {
    const params = new URLSearchParams({ limit: '100', archived: archivedView ? 'true' : 'false' });
    if (search.trim()) params.set('q', search.trim());
    try {
      const r = await get<{ items: ChatSummary[] }>(`/api/v1/chats?${params.toString()}`);
      setChats(r.items);
      setPersist(true);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setPersist(false);
    }
  }, [archivedView, search]);

  const refreshFolders = useCallback(async () => {
    try {
      setFolders((await get<{ items: Folder[] }>('/api/v1/folders')).items);
    } catch {
      setFolders([]);
    }
  }, []);

  useEffect(() => {
    const t = window.setTimeout(() => void refreshList(), search ? 250 : 0);
    return () => window.clearTimeout(t);
  }, [refreshList, search]);

  useEffect(() => {
    void refreshFolders();
  }, [refreshFolders]);

  // ---- the chat in the address
  useEffect(() => {
    if (chatId === currentIdRef.current) return;
    controllerRef.current?.abort();
    setOptionsOpen(false);
    setAttached([]);
    setNotice('');
    setLoadError('');
    if (!chatId) {
      currentIdRef.current = null;
      setActive(emptyChat());
      return;
    }
    currentIdRef.current = chatId;
    setLoading(true);
    get<ChatDetail>(`/api/v1/chats/${encodeURIComponent(chatId)}`)
      .then((c) => {
        if (currentIdRef.current !== chatId) return;
        const a = fromDetail(c);
        setActive(a);
        const last = [...a.messages].reverse().find((m) => m.role === 'assistant' && m.model)?.model;
        if (last) setModel(last);
      })
      .catch((e: unknown) => {
        if (currentIdRef.current !== chatId) return;
        setActive(emptyChat());
        setLoadError(e instanceof ApiError && e.status === 404 ? 'This chat does not exist.' : messageOf(e));
      })
      .finally(() => setLoading(false));
  }, [chatId]);

  // Keep the newest text in view while the answer streams, unless the reader scrolled up.
  const lastLength = active.messages.at(-1)?.content.length ?? 0;
  useEffect(() => {
    const el = logRef.current;
    if (!el) return;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 160) el.scrollTop = el.scrollHeight;
  }, [lastLength, active.messages.length]);

  const patchMessage = useCallback((id: string, change: Partial<Message>) => {
    setActive((a) => ({ ...a, messages: a.messages.map((m) => (m.id === id ? { ...m, ...change } : m)) }));
  }, []);

  /**
   * Streams an answer to `history` and stores it in chat `chatId` (when chats are stored).
   * `system` is sent before the conversation (not stored). Resolves with the finished answer, or
   * null when it failed, was stopped or the chat was left.
   */
  async function answer(
    chatId: string | null,
    history: Message[],
    useModel: string,
    system?: string,
  ): Promise<Message | null> {
    const assistant: Message = { id: localId(), saved: false, role: 'assistant', content: '', model: useModel };
    setActive((a) => ({ ...a, messages: [...history, assistant] }));
    const controller = new AbortController();
    controllerRef.current = controller;
    setStreamingId(assistant.id);

    let text = '';
    let citations: Citation[] | undefined;
    let frame = 0;
    const flush = () => {
      frame = 0;
      patchMessage(assistant.id, { content: text });
    };
    let failure: string | undefined;
    let stopped = false;
    try {
      await streamChat(
        {
          model: useModel,
          messages: [...(system ? [{ role: 'system' as const, content: system }] : []), ...toRequestMessages(history)],
          ...(attached.length ? { files: attached.map((a) => ({ type: a.type, id: a.id })) } : {}),
        },
        (delta) => {
          text += delta;
          if (!frame) frame = window.requestAnimationFrame(flush);
        },
        controller.signal,
        (list) => {
          citations = list;
          patchMessage(assistant.id, { citations: list });
        },
      );
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') stopped = true;
      else failure = messageOf(e);
    } finally {
      if (frame) window.cancelAnimationFrame(frame);
      if (controllerRef.current === controller) controllerRef.current = null;
    }
    patchMessage(assistant.id, { content: text, error: failure, stopped });
    setStreamingId(null);
    let finished: Message | null = text && !failure && !stopped ? { ...assistant, content: text } : null;
    // A finished or stopped answer is kept; a failed one is shown with its error but not stored.
    if (chatId && persist && text && !failure && currentIdRef.current === chatId) {
      try {
        const r = await post<{ items: StoredMessage[] }>(`/api/v1/chats/${encodeURIComponent(chatId)}/messages`, {
          messages: [{ role: 'assistant', content: text, model: useModel, citations: storableCitations(citations) }],
        });
        const saved = r.items[0];
        if (saved) patchMessage(assistant.id, { id: saved.id, saved: true });
        if (saved && finished) finished = { ...finished, id: saved.id, saved: true };
      } catch (e) {
        setNotice(`The answer could not be saved: ${messageOf(e)}`);
      }
    }
    void refreshList();
    inputRef.current?.focus();
    return currentIdRef.current === chatId ? finished : null;
  }

  /**
   * The code interpreter: runs the `python exec` blocks of the answer in this browser, sends their
   * output back to the model as the next message and repeats, at most MAX_ROUNDS times.
   */
  async function interpret(chatId: string | null, history: Message[], useModel: string, first: Message) {
    codeCancelledRef.current = false;
    const namespace = `${first.id}-${Date.now().toString(36)}`;
    let messages = [...history, first];
    let last: Message | null = first;
    try {
      for (let round = 1; last && round <= MAX_ROUNDS; round++) {
        const blocks = execBlocks(last.content);
        if (!blocks.length) return;
        const results = [];
        for (const [i, code] of blocks.entries()) {
          if (codeCancelledRef.current || currentIdRef.current !== chatId) return;
          setCodeStatus(`Running code ${i + 1} of ${blocks.length} in your browser (round ${round})…`);
          results.push(
            await runPython(code, {
              namespace,
              onStatus: (s) => s === 'starting' && setCodeStatus('Starting Python in your browser…'),
            }),
          );
        }
        if (codeCancelledRef.current || currentIdRef.current !== chatId) return;
        setCodeStatus('Sending the code output to the model…');
        const content = formatOutputs(results, round);
        let output: Message = { id: localId(), saved: false, role: 'user', content, execution: true };
        if (chatId && persist) {
          try {
            const r = await post<{ items: StoredMessage[] }>(`/api/v1/chats/${encodeURIComponent(chatId)}/messages`, {
              messages: [{ role: 'user', content }],
            });
            const sid = r.items[0]?.id;
            if (sid) output = { ...output, id: sid, saved: true };
          } catch (e) {
            setNotice(`The code output could not be saved: ${messageOf(e)}`);
          }
        }
        messages = [...messages, output];
        last = await answer(chatId, messages, useModel, INTERPRETER_INSTRUCTION);
        if (last) messages = [...messages, last];
      }
      if (last && execBlocks(last.content).length)
        setNotice(`The code interpreter runs at most ${MAX_ROUNDS} rounds per message; the last code was not run.`);
    } finally {
      setCodeStatus('');
    }
  }

  async function send(e?: FormEvent) {
    e?.preventDefault();
    const content = input.trim();
    if (!content || streamingId || codeStatus || !model) return;
    setInput('');
    setNotice('');
    const user: Message = { id: localId(), saved: false, role: 'user', content };
    let chatId = active.id;
    let history = [...active.messages, user];
    setActive((a) => ({ ...a, messages: history }));
    if (persist) {
      try {
        if (!chatId) {
          const c = await post<ChatDetail>('/api/v1/chats', {
            title: titleOf(content),
            messages: [{ role: 'user', content }],
          });
          chatId = c.id;
          const sid = c.messages[0]?.id;
          history = history.map((m) => (m.id === user.id && sid ? { ...m, id: sid, saved: true } : m));
          currentIdRef.current = chatId;
          setActive((a) => ({ ...a, id: c.id, title: c.title, messages: history }));
          navigate(`/chat/${c.id}`);
        } else {
          const r = await post<{ items: StoredMessage[] }>(`/api/v1/chats/${encodeURIComponent(chatId)}/messages`, {
            messages: [{ role: 'user', content }],
          });
          const sid = r.items[0]?.id;
          history = history.map((m) => (m.id === user.id && sid ? { ...m, id: sid, saved: true } : m));
          setActive((a) => ({ ...a, messages: history }));
        }
      } catch (err) {
        setNotice(`Your message could not be saved: ${messageOf(err)}`);
      }
    }
    const withInterpreter = interpreterAvailable && interpreter;
    const first = await answer(chatId, history, model, withInterpreter ? INTERPRETER_INSTRUCTION : undefined);
    if (withInterpreter && first) await interpret(chatId, history, model, first);
  }

  function stop() {
    controllerRef.current?.abort();
    if (codeStatus) {
      codeCancelledRef.current = true;
      stopPython();
    }
  }

  async function regenerate() {
    if (streamingId) return;
    const msgs = active.messages;
    const lastUser = msgs.map((m) => m.role).lastIndexOf('user');
    if (lastUser < 0) return;
    const dropped = msgs.slice(lastUser + 1);
    try {
      if (persist && active.id)
        for (const m of dropped)
          if (m.saved) await del(`/api/v1/chats/${encodeURIComponent(active.id)}/messages/${encodeURIComponent(m.id)}`);
    } catch (e) {
      setNotice(messageOf(e));
      return;
    }
    // After code output, the model answers under the same instruction it ran the code with.
    const system = msgs[lastUser]!.execution ? INTERPRETER_INSTRUCTION : undefined;
    await answer(active.id, msgs.slice(0, lastUser + 1), model, system);
  }

  async function saveEdit(messageId: string, content: string) {
    if (streamingId) return;
    const i = active.messages.findIndex((m) => m.id === messageId);
    const text = content.trim();
    if (i < 0 || !text) return;
    const edited: Message = { ...active.messages[i]!, content: text };
    const dropped = active.messages.slice(i + 1);
    try {
      if (persist && active.id) {
        const base = `/api/v1/chats/${encodeURIComponent(active.id)}/messages`;
        if (edited.saved) await patch(`${base}/${encodeURIComponent(edited.id)}`, { content: text });
        for (const m of dropped) if (m.saved) await del(`${base}/${encodeURIComponent(m.id)}`);
      }
    } catch (e) {
      setNotice(messageOf(e));
      return;
    }
    await answer(active.id, [...active.messages.slice(0, i), edited], model);
  }

  function newChat() {
    if (streamingId) stop();
    setSidebarOpen(false);
    navigate('/chat');
    setInput('');
    inputRef.current?.focus();
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (promptMenu.onKeyDown(e)) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    } else if (e.key === 'Escape' && streamingId) {
      stop();
    }
  }

  const lastAssistantId = useMemo(
    () => active.messages.filter((m) => m.role === 'assistant').at(-1)?.id,
    [active.messages],
  );
  const streaming = streamingId !== null || codeStatus !== '';

  return (
    <div className="chat">
      <ChatSidebar
        open={sidebarOpen}
        persist={persist}
        chats={chats}
        folders={folders}
        activeId={active.id}
        archivedView={archivedView}
        search={search}
        onSearch={setSearch}
        onArchivedView={setArchivedView}
        onNewChat={newChat}
        onOpen={(id) => {
          setSidebarOpen(false);
          navigate(`/chat/${id}`);
        }}
        onFoldersChanged={async () => {
          await refreshFolders();
          await refreshList();
        }}
      />
      <section className="chat-main" aria-label="Conversation">
        <div className="chat-toolbar">
          <button
            type="button"
            className="btn btn-ghost icon-btn sidebar-btn"
            aria-expanded={sidebarOpen}
            aria-label="Show chats"
            onClick={() => setSidebarOpen(!sidebarOpen)}
          >
            <span aria-hidden="true">☰</span>
          </button>
          <h1 className="chat-title" title={active.title}>
            {active.id ? active.title : 'New chat'}
          </h1>
          <div className="field inline">
            <label htmlFor={modelId}>Model</label>
            <select
              id={modelId}
              value={model}
              disabled={!models || models.length === 0}
              onChange={(e) => setModel(e.target.value)}
            >
              {models === null ? <option value="">Loading…</option> : null}
              {models?.length === 0 ? <option value="">No models available</option> : null}
              {models && model && !models.some((m) => m.id === model) ? (
                <option value={model} disabled>
                  {model} (not available)
                </option>
              ) : null}
              {models?.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name || m.id}
                </option>
              ))}
            </select>
          </div>
          <MemoryToggle compact />
          {persist && active.id ? (
            <button
              type="button"
              className="btn btn-ghost"
              aria-expanded={optionsOpen}
              aria-controls="chat-options"
              onClick={() => setOptionsOpen(!optionsOpen)}
            >
              Chat options
            </button>
          ) : null}
        </div>
        {optionsOpen && active.id ? (
          <ChatOptions
            chat={active}
            folders={folders}
            onChanged={(change) => {
              setActive((a) => ({ ...a, ...change }));
              void refreshList();
            }}
            onGone={() => {
              setOptionsOpen(false);
              void refreshList();
              navigate('/chat');
            }}
          />
        ) : null}
        {modelsError ? <Alert kind="info">{modelsError}</Alert> : null}
        {persist === false ? (
          <p className="muted small chat-note">Chats are not saved on this server: this one lasts until you leave.</p>
        ) : null}
        <Alert>{loadError}</Alert>
        <Alert>{notice}</Alert>
        <div className="chat-log" ref={logRef} role="log" aria-live="polite" aria-busy={streaming}>
          {loading ? <Spinner label="Loading the chat" /> : null}
          {!loading && active.messages.length === 0 ? (
            <div className="chat-empty">
              <p className="chat-empty-title">How can I help?</p>
              <p className="muted">
                Answers stream in as they are written. Press Enter to send, Shift+Enter for a new line.
              </p>
            </div>
          ) : (
            active.messages.map((m) => (
              <MessageView
                key={m.id}
                message={m}
                streaming={streamingId === m.id}
                canRegenerate={!streaming && m.id === lastAssistantId}
                canEdit={!streaming && m.role === 'user' && !m.execution}
                canRunCode={canRunCode}
                onRegenerate={() => void regenerate()}
                onEdit={(text) => void saveEdit(m.id, text)}
              />
            ))
          )}
        </div>
        {codeStatus ? (
          <p className="muted small chat-note" role="status">
            {codeStatus}
          </p>
        ) : null}
        <AttachBar attached={attached} onChange={setAttached} disabled={streaming} />
        {interpreterAvailable ? (
          <label
            className="check code-interpreter-toggle"
            title="Python code in the answer runs in your browser and its output is sent back, up to 3 rounds"
          >
            <input type="checkbox" checked={interpreter} onChange={(e) => setInterpreter(e.target.checked)} />
            Code interpreter
          </label>
        ) : null}
        <form className="composer" onSubmit={(e) => void send(e)}>
          {promptMenu.menu}
          <label htmlFor={inputId} className="sr-only">
            Message
          </label>
          <textarea
            id={inputId}
            ref={inputRef}
            rows={2}
            placeholder={model ? 'Send a message (/ for your prompts)' : 'No model available'}
            value={input}
            onChange={(e) => {
              setInput(e.target.value);
              promptMenu.trackCaret(e.target);
            }}
            onSelect={(e) => promptMenu.trackCaret(e.currentTarget)}
            onKeyDown={onKeyDown}
            {...promptMenu.inputProps}
          />
          {streaming ? (
            <button type="button" className="btn btn-danger" onClick={stop}>
              Stop
            </button>
          ) : (
            <button type="submit" className="btn btn-primary" disabled={!input.trim() || !model}>
              Send
            </button>
          )}
        </form>
      </section>
    </div>
  );
}

/** Rename, pin, archive, folder, share link, delete — for the open chat. */
function ChatOptions({
  chat,
  folders,
  onChanged,
  onGone,
}: {
  chat: Active;
  folders: Folder[];
  onChanged: (change: Partial<Active>) => void;
  onGone: () => void;
}) {
  const [title, setTitle] = useState(chat.title);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [copied, setCopied] = useState('');
  const titleId = useId();
  const folderId = useId();
  const linkId = useId();
  const base = `/api/v1/chats/${encodeURIComponent(chat.id!)}`;
  const shareUrl = chat.shareId ? `${window.location.origin}/s/${chat.shareId}` : '';

  async function run(action: () => Promise<void>) {
    setError('');
    setBusy(true);
    try {
      await action();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div id="chat-options" className="chat-options" role="group" aria-label="Chat options">
      <form
        className="field inline"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const r = await patch<ChatSummary>(base, { title: title.trim() });
            onChanged({ title: r.title });
          });
        }}
      >
        <label htmlFor={titleId}>Title</label>
        <input id={titleId} value={title} maxLength={500} onChange={(e) => setTitle(e.target.value)} />
        <button type="submit" className="btn btn-small" disabled={busy || !title.trim() || title === chat.title}>
          Rename
        </button>
      </form>
      <div className="field inline">
        <label htmlFor={folderId}>Folder</label>
        <select
          id={folderId}
          value={chat.folderId ?? ''}
          disabled={busy}
          onChange={(e) => {
            const v = e.target.value || null;
            void run(async () => {
              await patch(base, { folder_id: v });
              onChanged({ folderId: v });
            });
          }}
        >
          <option value="">No folder</option>
          {folders.map((f) => (
            <option key={f.id} value={f.id}>
              {f.name}
            </option>
          ))}
        </select>
      </div>
      <div className="row tight">
        <button
          type="button"
          className="btn btn-small"
          aria-pressed={chat.pinned}
          disabled={busy}
          onClick={() =>
            void run(async () => {
              await patch(base, { pinned: !chat.pinned });
              onChanged({ pinned: !chat.pinned });
            })
          }
        >
          {chat.pinned ? 'Unpin' : 'Pin'}
        </button>
        <button
          type="button"
          className="btn btn-small"
          disabled={busy}
          onClick={() =>
            void run(async () => {
              await patch(base, { archived: !chat.archived });
              if (chat.archived) onChanged({ archived: false });
              else onGone();
            })
          }
        >
          {chat.archived ? 'Unarchive' : 'Archive'}
        </button>
        <button
          type="button"
          className="btn btn-small"
          disabled={busy}
          onClick={() =>
            void run(async () => {
              const r = await post<{ share_id: string }>(`${base}/share`);
              onChanged({ shareId: r.share_id });
            })
          }
        >
          {chat.shareId ? 'Update share link' : 'Share link'}
        </button>
        <button
          type="button"
          className="btn btn-small btn-danger-outline"
          disabled={busy}
          onClick={() => setConfirmDelete(true)}
        >
          Delete chat
        </button>
      </div>
      {shareUrl ? (
        <div className="share-box">
          <label htmlFor={linkId}>Share link (signed-in users with the link see a read-only copy)</label>
          <div className="copy-row">
            <input id={linkId} readOnly value={shareUrl} onFocus={(e) => e.target.select()} />
            <button
              type="button"
              className="btn btn-small"
              onClick={async () => {
                try {
                  await navigator.clipboard.writeText(shareUrl);
                  setCopied('Link copied.');
                } catch {
                  setCopied('Select the link and copy it.');
                }
              }}
            >
              Copy link
            </button>
            <button
              type="button"
              className="btn btn-small btn-danger-outline"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  await del(`${base}/share`);
                  onChanged({ shareId: null });
                })
              }
            >
              Stop sharing
            </button>
          </div>
          <p className="muted small" role="status">
            {copied}
          </p>
        </div>
      ) : null}
      <Alert>{error}</Alert>
      <ConfirmDialog
        open={confirmDelete}
        danger
        title="Delete this chat?"
        confirmLabel="Delete"
        onCancel={() => setConfirmDelete(false)}
        onConfirm={() => {
          setConfirmDelete(false);
          void run(async () => {
            await del(base);
            onGone();
          });
        }}
      >
        “{chat.title}” and its messages are deleted. A share link to it stops working.
      </ConfirmDialog>
    </div>
  );
}
