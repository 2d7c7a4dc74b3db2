import { useId, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { createPortal } from 'react-dom';
import { pythonBlocks, renderMarkdown } from '../../lib/markdown';
import { Alert, Spinner } from '../../components/ui';
import type { Citation } from '../../lib/sse';
import { Artifacts } from './Artifacts';
import { Citations } from './Attachments';
import { CodeRun } from './CodeRun';

export interface ViewMessage {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  model?: string;
  error?: string;
  stopped?: boolean;
  /** Sources the answer was given (shown as plain text). */
  citations?: Citation[];
  /** Tools the model asked to call (shown collapsed, as plain text). */
  toolCalls?: ToolCallView[];
  /** A message carrying the code interpreter's output (sent to the model as a user message). */
  execution?: boolean;
}

export interface ToolCallView {
  id: string;
  name: string;
  arguments: string;
}

/** Well-formed tool calls of a stored answer (`{id, type, function: {name, arguments}}`). */
export function toolCallsOf(list: unknown[]): ToolCallView[] {
  const out: ToolCallView[] = [];
  for (const c of list as { id?: unknown; function?: { name?: unknown; arguments?: unknown } | null }[]) {
    if (!c || typeof c !== 'object') continue;
    const fn = c.function && typeof c.function === 'object' ? c.function : null;
    const name = typeof fn?.name === 'string' ? fn.name : '';
    const args = typeof fn?.arguments === 'string' ? fn.arguments : fn?.arguments ? JSON.stringify(fn.arguments) : '';
    if (!name && !args) continue;
    out.push({ id: typeof c.id === 'string' ? c.id : '', name: name || 'tool', arguments: args });
  }
  return out;
}

/** Arguments indented when they are JSON, as sent otherwise. */
function prettyArguments(args: string): string {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

/** An answer's tool calls, collapsed to one line: the names; opened, each call's arguments. */
export function ToolCalls({ calls }: { calls: ToolCallView[] }) {
  if (calls.length === 0) return null;
  return (
    <details className="tool-calls">
      <summary>
        {calls.length === 1 ? 'Tool call' : `Tool calls (${calls.length})`}:{' '}
        <span className="tool-call-names">{calls.map((c) => c.name).join(', ')}</span>
      </summary>
      <ol className="tool-call-list">
        {calls.map((c, i) => (
          <li key={`${i}:${c.id}`} className="tool-call">
            <code className="tool-call-name">{c.name}</code>
            {c.arguments ? <pre className="tool-call-args">{prettyArguments(c.arguments)}</pre> : null}
          </li>
        ))}
      </ol>
    </details>
  );
}

/**
 * Model output is untrusted: it is rendered by markdown-it with html disabled (tags arrive as
 * escaped text) — the only HTML that reaches the DOM is what the renderer itself produces.
 * A user's own message is shown as plain text.
 */
export function Markdown({ source, runnable = false }: { source: string; runnable?: boolean }) {
  // One object per distinct HTML: React re-applies innerHTML whenever this object changes, which
  // would also wipe the Run buttons rendered into the placeholders.
  const html = useMemo(() => ({ __html: renderMarkdown(source, { codeSlots: runnable }) }), [source, runnable]);
  const blocks = useMemo(() => (runnable ? pythonBlocks(source) : []), [source, runnable]);
  const ref = useRef<HTMLDivElement>(null);
  const [slots, setSlots] = useState<HTMLElement[]>([]);
  // Python blocks get a Run button: rendered by React into the renderer's empty placeholders.
  useLayoutEffect(() => {
    const el = ref.current;
    setSlots(runnable && el ? Array.from(el.querySelectorAll<HTMLElement>('.code-run-slot')) : []);
  }, [html, runnable]);
  return (
    <>
      <div ref={ref} className="markdown" dangerouslySetInnerHTML={html} />
      {slots.map((slot, i) =>
        blocks[i] !== undefined ? createPortal(<CodeRun code={blocks[i]} />, slot, `${i}:${blocks[i].length}`) : null,
      )}
    </>
  );
}

export function MessageView({
  message,
  streaming = false,
  canRegenerate = false,
  canEdit = false,
  canRunCode = false,
  onRegenerate,
  onEdit,
}: {
  message: ViewMessage;
  streaming?: boolean;
  canRegenerate?: boolean;
  canEdit?: boolean;
  /** Python blocks of an answer get a Run button (ENABLE_CODE_EXECUTION). */
  canRunCode?: boolean;
  onRegenerate?: () => void;
  onEdit?: (text: string) => void;
}) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.content);
  const [copied, setCopied] = useState('');
  const editId = useId();

  async function copy() {
    try {
      await navigator.clipboard.writeText(message.content);
      setCopied('Copied');
    } catch {
      setCopied('Copy failed');
    }
    window.setTimeout(() => setCopied(''), 2000);
  }

  const who = message.execution ? 'Code interpreter' : message.role === 'user' ? 'You' : message.model || 'Assistant';
  const label = message.execution ? 'Code output' : message.role === 'user' ? 'Your message' : 'Answer';
  return (
    <article className={`msg msg-${message.role}${message.execution ? ' msg-execution' : ''}`} aria-label={label}>
      <div className="msg-who">{who}</div>
      {editing ? (
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            setEditing(false);
            onEdit?.(draft);
          }}
        >
          <label htmlFor={editId} className="sr-only">
            Edit message
          </label>
          <textarea id={editId} rows={3} value={draft} onChange={(e) => setDraft(e.target.value)} autoFocus />
          <div className="row tight">
            <button type="submit" className="btn btn-primary btn-small" disabled={!draft.trim()}>
              Save and send
            </button>
            <button type="button" className="btn btn-small" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : message.execution ? (
        <Markdown source={message.content} />
      ) : message.role === 'user' ? (
        <div className="msg-text">{message.content}</div>
      ) : (
        <Markdown source={message.content} runnable={canRunCode && !streaming} />
      )}
      {message.role === 'assistant' && !streaming && !editing ? <Artifacts markdown={message.content} /> : null}
      {message.role === 'assistant' && message.toolCalls ? <ToolCalls calls={message.toolCalls} /> : null}
      {message.role === 'assistant' && message.citations ? <Citations citations={message.citations} /> : null}
      {streaming && message.content === '' ? <Spinner label="Thinking" /> : null}
      {message.stopped ? <p className="muted small">Stopped.</p> : null}
      {message.error ? <Alert>{message.error}</Alert> : null}
      {!streaming && !editing && (onEdit || onRegenerate) ? (
        <div className="msg-actions">
          {canEdit ? (
            <button
              type="button"
              className="btn btn-ghost btn-small"
              onClick={() => {
                setDraft(message.content);
                setEditing(true);
              }}
            >
              Edit
            </button>
          ) : null}
          {message.role === 'assistant' && message.content ? (
            <button type="button" className="btn btn-ghost btn-small" onClick={() => void copy()}>
              {copied || 'Copy'}
            </button>
          ) : null}
          {canRegenerate ? (
            <button type="button" className="btn btn-ghost btn-small" onClick={onRegenerate}>
              Regenerate
            </button>
          ) : null}
        </div>
      ) : null}
    </article>
  );
}
