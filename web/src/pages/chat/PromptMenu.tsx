import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent, type RefObject } from 'react';
import { get } from '../../lib/api';

/** A workspace prompt as `GET /api/v1/prompts` lists it. */
export interface PromptItem {
  id: string;
  command: string;
  title: string;
  content: string;
}

const MAX_SHOWN = 8;

/** The `/command` being typed: the composer starts with a slash and the caret is still in that word. */
export function commandQuery(text: string, caret: number): string | null {
  const m = /^\/([^\s/]*)/.exec(text);
  if (!m || caret < 1 || caret > m[0].length) return null;
  return m[1]!.toLowerCase();
}

/** Prompts whose command starts with `query` first, then those whose command or title contains it. */
export function matchPrompts(items: readonly PromptItem[], query: string): PromptItem[] {
  const q = query.toLowerCase();
  const starts = items.filter((p) => p.command.startsWith(q));
  const contains = items.filter(
    (p) => !p.command.startsWith(q) && (p.command.includes(q) || p.title.toLowerCase().includes(q)),
  );
  return [...starts, ...contains].slice(0, MAX_SHOWN);
}

/**
 * `/command` in the chat composer: typing a slash at the start of the message opens a list of the
 * prompts the user may use, filtered as they type. Arrow keys and Enter (or Tab), or a click,
 * replace the `/command` with the prompt's text (as written: prompts have no variables); Escape
 * closes the list.
 */
export function usePromptMenu(
  input: string,
  setInput: (text: string) => void,
  inputRef: RefObject<HTMLTextAreaElement | null>,
) {
  const listId = useId();
  const [caret, setCaret] = useState(0);
  const [prompts, setPrompts] = useState<PromptItem[] | null>(null);
  const [active, setActive] = useState(0);
  // Escape closes the list until the typed command changes.
  const [dismissed, setDismissed] = useState<string | null>(null);
  const loadingRef = useRef(false);

  const query = commandQuery(input, caret);
  const open = query !== null && dismissed !== query;

  // The list is read when it opens (and again each time it reopens, so new prompts appear).
  useEffect(() => {
    if (!open) {
      if (query === null) setPrompts(null);
      return;
    }
    if (prompts !== null || loadingRef.current) return;
    loadingRef.current = true;
    get<{ items: PromptItem[] }>('/api/v1/prompts')
      .then((r) => setPrompts(Array.isArray(r?.items) ? r.items : []))
      .catch(() => setPrompts([]))
      .finally(() => {
        loadingRef.current = false;
      });
  }, [open, query, prompts]);

  const matches = useMemo(() => (open && prompts ? matchPrompts(prompts, query ?? '') : []), [open, prompts, query]);
  useEffect(() => setActive(0), [query]);
  useEffect(() => {
    if (query === null) setDismissed(null);
  }, [query]);

  function pick(p: PromptItem) {
    const token = /^\/[^\s/]*/.exec(input)?.[0] ?? '';
    const next = p.content + input.slice(token.length);
    setInput(next);
    setDismissed(null);
    const at = p.content.length;
    setCaret(at);
    window.requestAnimationFrame(() => {
      const el = inputRef.current;
      if (!el) return;
      el.focus();
      el.setSelectionRange(at, at);
    });
  }

  /** Keys for the open list; true when the key was handled (the composer must not act on it). */
  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>): boolean {
    if (!open) return false;
    if (e.key === 'Escape') {
      e.preventDefault();
      setDismissed(query);
      return true;
    }
    if (matches.length === 0) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const step = e.key === 'ArrowDown' ? 1 : -1;
      setActive((i) => (i + step + matches.length) % matches.length);
      return true;
    }
    if ((e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) || e.key === 'Tab') {
      e.preventDefault();
      pick(matches[Math.min(active, matches.length - 1)]!);
      return true;
    }
    return false;
  }

  const optionId = (i: number) => `${listId}-${i}`;
  const showList = open && prompts !== null;
  const menu = showList ? (
    <div className="prompt-menu">
      {matches.length ? (
        <ul id={listId} role="listbox" aria-label="Prompts" className="prompt-menu-list">
          {matches.map((p, i) => (
            <li
              key={p.id}
              id={optionId(i)}
              role="option"
              aria-selected={i === active}
              className={i === active ? 'prompt-option active' : 'prompt-option'}
              onMouseDown={(e) => e.preventDefault()}
              onMouseEnter={() => setActive(i)}
              onClick={() => pick(p)}
            >
              <span className="prompt-option-command">/{p.command}</span>
              <span className="prompt-option-title muted">{p.title}</span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="prompt-menu-empty muted small" role="status">
          {prompts.length ? `No prompt matches /${query}` : 'No prompts yet: add them under Workspace › Prompts.'}
        </p>
      )}
    </div>
  ) : null;

  return {
    menu,
    onKeyDown,
    /** Keeps the caret position known (the list follows the word the caret is in). */
    trackCaret: (el: HTMLTextAreaElement) => setCaret(el.selectionStart ?? el.value.length),
    inputProps: {
      'aria-autocomplete': 'list' as const,
      'aria-controls': showList && matches.length ? listId : undefined,
      'aria-activedescendant': showList && matches.length ? optionId(Math.min(active, matches.length - 1)) : undefined,
    },
  };
}
