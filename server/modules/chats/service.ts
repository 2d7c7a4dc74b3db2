import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import type { Db, Trx } from '../../platform/db/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import type { Chat, ChatFolder, ChatMessage } from './tables.js';
import './tables.js';

/**
 * Chats, their messages and folders. Every query that reads or changes a user's rows carries the
 * owner in its WHERE; a chat, message or folder that is not the caller's is "not found" (404),
 * including ids carried in bodies (a folder to move a chat into).
 */

export const MAX_MESSAGES_PER_REQUEST = 1000;
export const MAX_CONTENT_CHARS = 1_000_000;
const MAX_JSON_FIELD = 16_384;
export const MAX_CITATIONS = 64;
export const MAX_CITATION_TEXT = 20_000;

const jsonObject = z
  .record(z.string(), z.unknown())
  .refine((v) => JSON.stringify(v).length <= MAX_JSON_FIELD, `must be at most ${MAX_JSON_FIELD} bytes of JSON`);

/** Content as the UI and the OpenAI-compatible API produce it: text, an array of parts, or null. */
export const messageContent = z.union([
  z.string().max(MAX_CONTENT_CHARS),
  z
    .array(z.object({ type: z.string().min(1).max(64) }).passthrough())
    .max(200)
    .refine((v) => JSON.stringify(v).length <= MAX_CONTENT_CHARS, 'content is too large'),
  z.null(),
]);

/** A source an answer was given (as the gateway attaches it: `citations` / `hridaai.citations`). */
export const citationInput = z
  .object({
    index: z.number().int().min(0).max(10_000),
    title: z.string().max(1000),
    source_type: z.enum(['file', 'web']),
    url: z.string().max(4096).nullish(),
    file_id: z.string().max(64).nullish(),
    knowledge_id: z.string().max(64).nullish(),
    seq: z.number().int().min(0).optional(),
    text: z.string().max(MAX_CITATION_TEXT),
  })
  .strict();

export type CitationInput = z.infer<typeof citationInput>;

export const messageInput = z
  .object({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: messageContent,
    model: z.string().min(1).max(256).nullish(),
    usage: jsonObject.nullish(),
    /** Milliseconds; defaults to the time of the request. */
    created_at: z
      .number()
      .int()
      .min(0)
      .refine((t) => t <= Date.now() + 86_400_000, 'must not be in the future')
      .optional(),
    name: z.string().max(256).optional(),
    tool_calls: z.array(z.unknown()).max(128).optional(),
    tool_call_id: z.string().max(256).optional(),
    /** The sources an assistant answer was given. */
    citations: z.array(citationInput).max(MAX_CITATIONS).optional(),
  })
  .strict();

export type MessageInput = z.infer<typeof messageInput>;

/** The plain text of a message's content, for search. */
export function contentText(content: MessageInput['content']): string {
  if (content === null) return '';
  if (typeof content === 'string') return content;
  return content
    .map((p) => {
      const t: unknown = (p as Record<string, unknown>).text;
      return p.type === 'text' && typeof t === 'string' ? t : '';
    })
    .filter(Boolean)
    .join('\n');
}

export function deriveTitle(messages: readonly MessageInput[]): string {
  const first = messages.find((m) => m.role === 'user');
  const text = first ? contentText(first.content).replace(/\s+/g, ' ').trim() : '';
  if (!text) return 'New chat';
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function parseJson(v: string | null): unknown {
  if (v === null) return null;
  try {
    return JSON.parse(v);
  } catch {
    return null;
  }
}

export function presentMessage(m: ChatMessage) {
  const meta = (parseJson(m.meta) ?? {}) as Record<string, unknown>;
  return {
    id: m.id,
    role: m.role,
    content: parseJson(m.content),
    model: m.model,
    usage: parseJson(m.usage),
    created_at: m.created_at,
    updated_at: m.updated_at,
    ...(meta.name !== undefined ? { name: meta.name } : {}),
    ...(meta.tool_calls !== undefined ? { tool_calls: meta.tool_calls } : {}),
    ...(meta.tool_call_id !== undefined ? { tool_call_id: meta.tool_call_id } : {}),
    ...(meta.citations !== undefined ? { citations: meta.citations } : {}),
  };
}

export function presentChatSummary(c: Chat) {
  return {
    id: c.id,
    title: c.title,
    folder_id: c.folder_id,
    pinned: c.pinned === 1,
    archived: c.archived === 1,
    created_at: c.created_at,
    updated_at: c.updated_at,
  };
}

export function presentChat(c: Chat, messages: ChatMessage[], shareId: string | null) {
  return { ...presentChatSummary(c), share_id: shareId, messages: messages.map(presentMessage) };
}

export function presentFolder(f: ChatFolder) {
  return { id: f.id, name: f.name, created_at: f.created_at, updated_at: f.updated_at };
}

/** Runs `fn` in `db` if it already is a transaction, otherwise in a new one. */
export async function inTransaction<T>(db: Db | Trx, fn: (trx: Trx) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db as Trx);
  return (db as Db).transaction().execute(fn);
}

/** 404 unless the folder exists and belongs to `ownerId`. */
export async function requireOwnedFolder(db: Db | Trx, ownerId: string, folderId: string): Promise<ChatFolder> {
  const f = await db
    .selectFrom('chat_folders')
    .selectAll()
    .where('id', '=', folderId)
    .where('user_id', '=', ownerId)
    .executeTakeFirst();
  if (!f) throw notFound('Folder');
  return f;
}

/** The chat if `ownerId` owns it; 404 otherwise. */
export async function getOwnedChat(db: Db | Trx, ownerId: string, chatId: string): Promise<Chat> {
  const c = await db
    .selectFrom('chats')
    .selectAll()
    .where('id', '=', chatId)
    .where('user_id', '=', ownerId)
    .executeTakeFirst();
  if (!c) throw notFound('Chat');
  return c;
}

/** Throws 404 unless `userId` owns the chat (for callers that only check, e.g. before dispatching). */
export async function assertOwnedChat(db: Db | Trx, userId: string, chatId: string): Promise<void> {
  await getOwnedChat(db, userId, chatId);
}

export async function chatMessages(db: Db | Trx, ownerId: string, chatId: string): Promise<ChatMessage[]> {
  return db
    .selectFrom('chat_messages')
    .selectAll()
    .where('chat_id', '=', chatId)
    .where('user_id', '=', ownerId)
    .orderBy('seq')
    .execute();
}

async function insertMessages(
  trx: Trx,
  chat: Pick<Chat, 'id' | 'user_id'>,
  messages: readonly MessageInput[],
  now: number,
): Promise<ChatMessage[]> {
  if (messages.length === 0) return [];
  if (messages.length > MAX_MESSAGES_PER_REQUEST)
    throw new AppError('validation_failed', `At most ${MAX_MESSAGES_PER_REQUEST} messages per request`);
  const { next } = await trx
    .selectFrom('chat_messages')
    .select(sql<number>`coalesce(max(seq), 0) + 1`.as('next'))
    .where('chat_id', '=', chat.id)
    .executeTakeFirstOrThrow();
  const rows: ChatMessage[] = messages.map((m, i) => {
    const meta: Record<string, unknown> = {};
    if (m.name !== undefined) meta.name = m.name;
    if (m.tool_calls !== undefined) meta.tool_calls = m.tool_calls;
    if (m.tool_call_id !== undefined) meta.tool_call_id = m.tool_call_id;
    if (m.citations !== undefined) meta.citations = m.citations;
    return {
      id: randomUUID(),
      chat_id: chat.id,
      user_id: chat.user_id,
      seq: Number(next) + i,
      role: m.role,
      content: JSON.stringify(m.content),
      text: contentText(m.content),
      model: m.model ?? null,
      usage: m.usage ? JSON.stringify(m.usage) : null,
      meta: Object.keys(meta).length ? JSON.stringify(meta) : null,
      created_at: m.created_at ?? now,
      updated_at: now,
    };
  });
  for (let i = 0; i < rows.length; i += 100)
    await trx
      .insertInto('chat_messages')
      .values(rows.slice(i, i + 100))
      .execute();
  return rows;
}

export interface NewChatInput {
  title?: string;
  folderId?: string | null;
  messages?: readonly MessageInput[];
}

export async function createChat(db: Db | Trx, ownerId: string, input: NewChatInput) {
  return inTransaction(db, async (trx) => {
    if (input.folderId) await requireOwnedFolder(trx, ownerId, input.folderId);
    const now = Date.now();
    const chat: Chat = {
      id: randomUUID(),
      user_id: ownerId,
      folder_id: input.folderId ?? null,
      title: input.title ?? deriveTitle(input.messages ?? []),
      pinned: 0,
      archived: 0,
      created_at: now,
      updated_at: now,
    };
    await trx.insertInto('chats').values(chat).execute();
    const messages = await insertMessages(trx, chat, input.messages ?? [], now);
    return { chat, messages };
  });
}

/**
 * Appends messages to a chat **only if `userId` owns it**; otherwise 404 and nothing is written.
 * The ownership check and the row lock are the same UPDATE (owner in its WHERE), so concurrent
 * appends to one chat are serialised and get consecutive positions. For the chat routes and the
 * model gateway (`chat_id` in a chat-completion request).
 */
export async function appendToOwnedChat(
  db: Db | Trx,
  userId: string,
  chatId: string,
  messages: readonly MessageInput[],
): Promise<ChatMessage[]> {
  return inTransaction(db, async (trx) => {
    const now = Date.now();
    const r = await trx
      .updateTable('chats')
      .set({ updated_at: now })
      .where('id', '=', chatId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFound('Chat');
    return insertMessages(trx, { id: chatId, user_id: userId }, messages, now);
  });
}

/** Deletes a chat, its messages and its share link (owner in every WHERE). */
export async function deleteChatRows(trx: Trx, ownerId: string, chatIds: readonly string[]): Promise<number> {
  if (chatIds.length === 0) return 0;
  await trx.deleteFrom('chat_shares').where('chat_id', 'in', chatIds).where('user_id', '=', ownerId).execute();
  await trx.deleteFrom('chat_messages').where('chat_id', 'in', chatIds).where('user_id', '=', ownerId).execute();
  const r = await trx.deleteFrom('chats').where('id', 'in', chatIds).where('user_id', '=', ownerId).executeTakeFirst();
  return Number(r.numDeletedRows);
}

export function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`;
}

export interface ChatListFilter {
  q?: string;
  archived: 'true' | 'false' | 'all';
  pinned?: boolean;
  folderId?: string;
  page: number;
  limit: number;
}

/** A user's chats, newest first; `q` searches titles and message text. */
export async function listChats(db: Db | Trx, ownerId: string, f: ChatListFilter) {
  let q = db.selectFrom('chats').where('chats.user_id', '=', ownerId);
  if (f.archived !== 'all') q = q.where('chats.archived', '=', f.archived === 'true' ? 1 : 0);
  if (f.pinned !== undefined) q = q.where('chats.pinned', '=', f.pinned ? 1 : 0);
  if (f.folderId !== undefined) q = q.where('chats.folder_id', '=', f.folderId);
  if (f.q) {
    const p = likePattern(f.q);
    q = q.where((eb) =>
      eb.or([
        sql<boolean>`lower(chats.title) like ${p} escape '\\'`,
        eb.exists(
          eb
            .selectFrom('chat_messages as m')
            .select('m.id')
            .whereRef('m.chat_id', '=', 'chats.id')
            .where('m.user_id', '=', ownerId)
            .where(sql<boolean>`lower(m.text) like ${p} escape '\\'`),
        ),
      ]),
    );
  }
  const { total } = await q.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const items = await q
    .selectAll('chats')
    .orderBy('chats.updated_at', 'desc')
    .orderBy('chats.id')
    .limit(f.limit)
    .offset((f.page - 1) * f.limit)
    .execute();
  return { items, total: Number(total) };
}
