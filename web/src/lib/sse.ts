/**
 * Incremental parser for the OpenAI-compatible stream of /api/chat/completions:
 * `data: {"choices":[{"delta":{"content":"…"}}]}` events, ended by `data: [DONE]`. A JSON frame
 * with an `error` member is a terminal error sent after the stream started.
 */
export type StreamEvent =
  | { type: 'delta'; content: string }
  | { type: 'done' }
  | { type: 'error'; code: string; message: string }
  | { type: 'citations'; citations: Citation[] };

/** A source of an answer (HridaAI's `hridaai.citations` event, sent before the first chunk). */
export interface Citation {
  index: number;
  title: string;
  source_type: 'file' | 'web';
  url: string | null;
  file_id: string | null;
  knowledge_id: string | null;
  text: string;
}

interface Chunk {
  object?: string;
  citations?: unknown;
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  error?: { message?: string; code?: string | null; type?: string };
}

export class SseParser {
  private buffer = '';

  /** Feeds decoded text; returns the events completed by it. */
  push(text: string): StreamEvent[] {
    this.buffer += text;
    const out: StreamEvent[] = [];
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!m) break;
      const block = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const ev = parseBlock(block);
      if (ev) out.push(ev);
    }
    return out;
  }

  /** The stream ended: a last event without the trailing blank line still counts. */
  end(): StreamEvent[] {
    const rest = this.buffer;
    this.buffer = '';
    const ev = rest.trim() ? parseBlock(rest) : null;
    return ev ? [ev] : [];
  }
}

function parseBlock(block: string): StreamEvent | null {
  const data: string[] = [];
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (line.startsWith(':')) continue;
    if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
  }
  if (data.length === 0) return null;
  const payload = data.join('\n');
  if (payload.trim() === '[DONE]') return { type: 'done' };
  let chunk: Chunk;
  try {
    chunk = JSON.parse(payload) as Chunk;
  } catch {
    return null;
  }
  if (chunk.object === 'hridaai.citations')
    return { type: 'citations', citations: Array.isArray(chunk.citations) ? citationsOf(chunk.citations) : [] };
  if (chunk.error)
    return {
      type: 'error',
      code: String(chunk.error.code ?? chunk.error.type ?? 'upstream_error'),
      message: chunk.error.message ?? 'The model stopped with an error',
    };
  const content = chunk.choices?.[0]?.delta?.content;
  return typeof content === 'string' && content.length > 0 ? { type: 'delta', content } : null;
}

/** Only well-formed citations, with every field a plain string or number. */
export function citationsOf(list: unknown[]): Citation[] {
  const out: Citation[] = [];
  for (const c of list as Partial<Citation>[]) {
    if (!c || typeof c.index !== 'number' || typeof c.title !== 'string') continue;
    out.push({
      index: c.index,
      title: c.title,
      source_type: c.source_type === 'web' ? 'web' : 'file',
      url: typeof c.url === 'string' ? c.url : null,
      file_id: typeof c.file_id === 'string' ? c.file_id : null,
      knowledge_id: typeof c.knowledge_id === 'string' ? c.knowledge_id : null,
      text: typeof c.text === 'string' ? c.text : '',
    });
  }
  return out;
}
