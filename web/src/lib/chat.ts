import { ApiError, errorFromBody, reportAuthLost } from './api';
import { citationsOf, SseParser, type Citation } from './sse';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * POST /api/chat/completions with `stream: true`; calls `onDelta` with each piece of text.
 * Resolves when the stream ends (`[DONE]` or end of body); rejects with an ApiError on an error
 * status or a terminal error event, or with an AbortError when `signal` is aborted.
 */
export async function streamChat(
  body: { model: string; messages: ChatMessage[]; files?: { type: 'file' | 'knowledge'; id: string }[] },
  onDelta: (text: string) => void,
  signal: AbortSignal,
  onCitations?: (citations: Citation[]) => void,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch('/api/chat/completions', {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection and try again.');
  }
  if (!res.ok) {
    let data: unknown;
    try {
      data = await res.json();
    } catch {
      data = undefined;
    }
    const err = errorFromBody(res.status, res.statusText, data);
    if (res.status === 401) reportAuthLost(err);
    throw err;
  }
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('text/event-stream')) {
    // A server may answer without streaming: take the whole message.
    const data = (await res.json()) as { choices?: { message?: { content?: string } }[]; citations?: unknown };
    if (Array.isArray(data.citations)) onCitations?.(citationsOf(data.citations));
    const text = data.choices?.[0]?.message?.content;
    if (typeof text === 'string') onDelta(text);
    return;
  }
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      const events = done ? parser.end() : parser.push(value);
      for (const ev of events) {
        if (ev.type === 'delta') onDelta(ev.content);
        else if (ev.type === 'citations') onCitations?.(ev.citations);
        else if (ev.type === 'error') throw new ApiError(502, ev.code, ev.message);
        else return;
      }
      if (done) return;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
