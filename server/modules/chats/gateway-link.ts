import type { AppContext } from '../../context.js';
import type { User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { memoryContext } from '../memories/service.js';
import {
  appendToOwnedChat,
  assertOwnedChat,
  MAX_CITATION_TEXT,
  MAX_CITATIONS,
  MAX_CONTENT_CHARS,
  messageInput,
  type CitationInput,
  type MessageInput,
} from './service.js';

/**
 * `chat_id` in a chat-completion request: the completion is appended to that chat **only if the
 * caller owns it**. The gateway calls `openChatLink` before anything is dispatched (another user's
 * chat, or one that does not exist, is 404 and nothing is sent upstream); the link then collects
 * the reply as it passes through and, after the response, appends the request's new turn (the
 * messages after its last assistant message) and the reply with its model and usage. Only
 * completed replies are appended; the append re-checks ownership in its own WHERE.
 *
 * The reply keeps its tool calls (a non-streamed `message.tool_calls`, or streamed
 * `delta.tool_calls` fragments assembled by index) and the citations HridaAI attached to the
 * response. Only the first choice is kept. Collecting is cheap: an event is parsed only when it can
 * carry content or tool calls.
 *
 * Memories: when the caller turned on "add my memories to my chats" and holds the
 * `features.memories` permission, `memory` is a system message for the request (chats only —
 * completions without `chat_id` never get memories).
 */
export interface ChatLink {
  readonly chatId: string;
  /** System-message text with the caller's memories, or null. */
  readonly memory: string | null;
  /** Streaming: SSE text exactly as sent to the client. */
  collect(sse: string): void;
  /** Non-streaming: the response document sent to the client. */
  reply(doc: Record<string, unknown>): void;
  /**
   * After the response; never throws. Resolves when the append is written (or refused).
   * `citations`: what the response carried (`citations` / the `hridaai.citations` event), if anything.
   */
  finish(
    status: 'completed' | 'error' | 'aborted',
    usage: unknown,
    citations?: readonly CitationInput[] | null,
  ): Promise<void>;
}

const MAX_TOOL_CALLS = 128;

interface ToolCallDelta {
  index?: unknown;
  id?: unknown;
  type?: unknown;
  function?: { name?: unknown; arguments?: unknown } | null;
}

interface ToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: string };
}

/**
 * Streamed tool calls arrive as fragments spread over events: the first fragment of a call has its
 * `index`, `id`, `type` and `function.name`, the next ones pieces of `function.arguments`. They are
 * assembled by index (name and arguments concatenated; a server that repeats the whole name in
 * every fragment does not get it doubled). At most 128 calls and MAX_CONTENT_CHARS of names and
 * arguments are kept.
 */
export class ToolCallAssembler {
  private readonly calls: ToolCall[] = [];
  private size = 0;
  private last = -1;

  add(deltas: unknown): void {
    if (!Array.isArray(deltas)) return;
    for (const raw of deltas as (ToolCallDelta | null)[]) {
      if (!raw || typeof raw !== 'object') continue;
      let i: number;
      if (typeof raw.index === 'number' && Number.isInteger(raw.index)) i = raw.index;
      else {
        // Without an index: a new id starts a new call, anything else continues the last one.
        const cur = this.calls[this.last];
        i = typeof raw.id === 'string' && raw.id && cur?.id !== raw.id ? this.last + 1 : Math.max(this.last, 0);
      }
      if (i < 0 || i >= MAX_TOOL_CALLS) continue;
      let call = this.calls[i];
      if (!call) call = this.calls[i] = { id: '', type: 'function', function: { name: '', arguments: '' } };
      this.last = i;
      if (typeof raw.id === 'string' && raw.id) call.id = raw.id.slice(0, 256);
      if (typeof raw.type === 'string' && raw.type) call.type = raw.type.slice(0, 64);
      const fn = raw.function;
      if (!fn || typeof fn !== 'object') continue;
      if (typeof fn.name === 'string' && fn.name && fn.name !== call.function.name)
        call.function.name = this.take(call.function.name, fn.name);
      if (typeof fn.arguments === 'string' && fn.arguments)
        call.function.arguments = this.take(call.function.arguments, fn.arguments);
    }
  }

  private take(acc: string, piece: string): string {
    const room = MAX_CONTENT_CHARS - this.size;
    if (room <= 0) return acc;
    const add = piece.length > room ? piece.slice(0, room) : piece;
    this.size += add.length;
    return acc + add;
  }

  /** The assembled calls in index order, or undefined when there were none. */
  result(): ToolCall[] | undefined {
    const out = this.calls.filter((c): c is ToolCall => c !== undefined);
    return out.length ? out : undefined;
  }
}

/** The citations as stored: the documented fields only, bounded. */
function storedCitations(list: readonly CitationInput[] | null | undefined): CitationInput[] | undefined {
  if (!list?.length) return undefined;
  return list.slice(0, MAX_CITATIONS).map((c) => ({
    index: c.index,
    title: String(c.title).slice(0, 1000),
    source_type: c.source_type === 'web' ? 'web' : 'file',
    url: c.url ?? null,
    file_id: c.file_id ?? null,
    knowledge_id: c.knowledge_id ?? null,
    ...(typeof c.seq === 'number' ? { seq: c.seq } : {}),
    text: String(c.text).slice(0, MAX_CITATION_TEXT),
  }));
}

function newTurn(messages: unknown): MessageInput[] {
  if (!Array.isArray(messages)) return [];
  let start = 0;
  messages.forEach((m, i) => {
    if ((m as { role?: unknown })?.role === 'assistant') start = i + 1;
  });
  const out: MessageInput[] = [];
  for (const m of messages.slice(start)) {
    const r = messageInput.safeParse(m);
    if (r.success) out.push(r.data);
  }
  return out;
}

export async function openChatLink(
  ctx: Pick<AppContext, 'config' | 'db' | 'log'>,
  user: Pick<User, 'id' | 'role' | 'active'>,
  body: Record<string, unknown>,
): Promise<ChatLink | null> {
  const userId = user.id;
  const raw = body.chat_id;
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 64)
    throw new AppError('validation_failed', 'chat_id must be the id of one of your chats');
  const chatId = raw;
  await assertOwnedChat(ctx.db, userId, chatId);
  const memory = await memoryContext(ctx, ctx.db, user);
  const turn = newTurn(body.messages);
  const model = typeof body.model === 'string' ? body.model.slice(0, 256) : null;
  let text = '';
  let toolCalls: unknown[] | undefined;
  let streamed: ToolCallAssembler | undefined;
  let pending = '';
  const add = (s: string) => {
    if (text.length < MAX_CONTENT_CHARS) text += s.slice(0, MAX_CONTENT_CHARS - text.length);
  };
  return {
    chatId,
    memory,
    collect(sse: string) {
      pending += sse;
      const end = pending.lastIndexOf('\n\n');
      if (end < 0) return;
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      for (const line of block.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (!data || data === '[DONE]') continue;
        // Only events that can carry content or tool calls are parsed (not usage or finish events).
        const tools = data.includes('"tool_calls"');
        if (!tools && !data.includes('"content"')) continue;
        try {
          const ev = JSON.parse(data) as {
            choices?: { index?: unknown; delta?: { content?: unknown; tool_calls?: unknown } }[];
          };
          const choice = ev.choices?.[0];
          if (!choice || (typeof choice.index === 'number' && choice.index !== 0)) continue;
          const c = choice.delta?.content;
          if (typeof c === 'string') add(c);
          if (tools && choice.delta?.tool_calls) (streamed ??= new ToolCallAssembler()).add(choice.delta.tool_calls);
        } catch {
          /* not JSON: nothing to keep */
        }
      }
    },
    reply(doc: Record<string, unknown>) {
      const msg = (doc.choices as { message?: { content?: unknown; tool_calls?: unknown } }[] | undefined)?.[0]
        ?.message;
      if (typeof msg?.content === 'string') add(msg.content);
      if (Array.isArray(msg?.tool_calls) && msg.tool_calls.length) toolCalls = msg.tool_calls.slice(0, MAX_TOOL_CALLS);
    },
    async finish(status, usage, citations) {
      if (status !== 'completed') return;
      const calls = toolCalls ?? streamed?.result();
      const sources = storedCitations(citations);
      const reply: MessageInput = {
        role: 'assistant',
        content: text.length === 0 && calls ? null : text,
        model,
        usage:
          usage && typeof usage === 'object' && JSON.stringify(usage).length <= 16_384
            ? (usage as Record<string, unknown>)
            : null,
        ...(calls ? { tool_calls: calls } : {}),
        ...(sources ? { citations: sources } : {}),
      };
      try {
        await appendToOwnedChat(ctx.db, userId, chatId, [...turn, reply]);
      } catch (e) {
        ctx.log.warn({ err: (e as Error).message, chat_id: chatId }, 'Could not append a completion to its chat');
      }
    },
  };
}
