import type { AppContext } from '../../context.js';
import type { User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { memoryContext } from '../memories/service.js';
import { appendToOwnedChat, assertOwnedChat, MAX_CONTENT_CHARS, messageInput, type MessageInput } from './service.js';

/**
 * `chat_id` in a chat-completion request: the completion is appended to that chat **only if the
 * caller owns it**. The gateway calls `openChatLink` before anything is dispatched (another user's
 * chat, or one that does not exist, is 404 and nothing is sent upstream); the link then collects
 * the reply as it passes through and, after the response, appends the request's new turn (the
 * messages after its last assistant message) and the reply with its model and usage. Only
 * completed replies are appended; the append re-checks ownership in its own WHERE.
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
  /** After the response; never throws. Resolves when the append is written (or refused). */
  finish(status: 'completed' | 'error' | 'aborted', usage: unknown): Promise<void>;
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
        try {
          const ev = JSON.parse(data) as { choices?: { delta?: { content?: unknown } }[] };
          const c = ev.choices?.[0]?.delta?.content;
          if (typeof c === 'string') add(c);
        } catch {
          /* not JSON: nothing to keep */
        }
      }
    },
    reply(doc: Record<string, unknown>) {
      const msg = (doc.choices as { message?: { content?: unknown; tool_calls?: unknown } }[] | undefined)?.[0]
        ?.message;
      if (typeof msg?.content === 'string') add(msg.content);
      if (Array.isArray(msg?.tool_calls)) toolCalls = msg.tool_calls.slice(0, 128);
    },
    async finish(status, usage) {
      if (status !== 'completed') return;
      const reply: MessageInput = {
        role: 'assistant',
        content: text.length === 0 && toolCalls ? null : text,
        model,
        usage:
          usage && typeof usage === 'object' && JSON.stringify(usage).length <= 16_384
            ? (usage as Record<string, unknown>)
            : null,
        ...(toolCalls ? { tool_calls: toolCalls } : {}),
      };
      try {
        await appendToOwnedChat(ctx.db, userId, chatId, [...turn, reply]);
      } catch (e) {
        ctx.log.warn({ err: (e as Error).message, chat_id: chatId }, 'Could not append a completion to its chat');
      }
    },
  };
}
