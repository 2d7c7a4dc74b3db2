import { randomBytes } from 'node:crypto';
import type { Db, Trx } from '../../platform/db/index.js';
import { notFound } from '../../platform/http/errors.js';
import { chatMessages, getOwnedChat, presentMessage } from './service.js';
import type { ChatShare } from './tables.js';

/**
 * Share links: an unguessable id (192 random bits, base64url) naming a read-only snapshot of a
 * chat taken when the link is made (or refreshed). Viewing needs a signed-in account and
 * ENABLE_COMMUNITY_SHARING=true; the owner revokes by deleting the link.
 */

export const SHARE_ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;

export function newShareId(): string {
  return randomBytes(24).toString('base64url');
}

interface Snapshot {
  title: string;
  messages: { role: string; content: unknown; model: string | null; created_at: number; name?: unknown }[];
}

async function takeSnapshot(trx: Trx, ownerId: string, chatId: string): Promise<string> {
  const chat = await getOwnedChat(trx, ownerId, chatId);
  const messages = (await chatMessages(trx, ownerId, chatId)).map(presentMessage);
  const snap: Snapshot = {
    title: chat.title,
    messages: messages.map((m) => ({
      role: m.role,
      content: m.content,
      model: m.model,
      created_at: m.created_at,
      ...('name' in m ? { name: m.name } : {}),
    })),
  };
  return JSON.stringify(snap);
}

/** Creates the chat's link, or refreshes its snapshot (same id) when it already has one. */
export async function shareChat(
  trx: Trx,
  ownerId: string,
  chatId: string,
): Promise<{ share: ChatShare; created: boolean }> {
  const snapshot = await takeSnapshot(trx, ownerId, chatId);
  const now = Date.now();
  const existing = await trx
    .selectFrom('chat_shares')
    .selectAll()
    .where('chat_id', '=', chatId)
    .where('user_id', '=', ownerId)
    .executeTakeFirst();
  if (existing) {
    await trx
      .updateTable('chat_shares')
      .set({ snapshot, updated_at: now })
      .where('id', '=', existing.id)
      .where('user_id', '=', ownerId)
      .execute();
    return { share: { ...existing, snapshot, updated_at: now }, created: false };
  }
  const share: ChatShare = {
    id: newShareId(),
    chat_id: chatId,
    user_id: ownerId,
    snapshot,
    created_at: now,
    updated_at: now,
  };
  await trx.insertInto('chat_shares').values(share).execute();
  return { share, created: true };
}

/** Revokes the chat's link; 404 when the chat is not the caller's or has no link. */
export async function unshareChat(trx: Trx, ownerId: string, chatId: string): Promise<ChatShare> {
  await getOwnedChat(trx, ownerId, chatId);
  const existing = await trx
    .selectFrom('chat_shares')
    .selectAll()
    .where('chat_id', '=', chatId)
    .where('user_id', '=', ownerId)
    .executeTakeFirst();
  if (!existing) throw notFound('Share link');
  await trx.deleteFrom('chat_shares').where('id', '=', existing.id).where('user_id', '=', ownerId).execute();
  return existing;
}

export async function shareIdOf(db: Db | Trx, ownerId: string, chatId: string): Promise<string | null> {
  const row = await db
    .selectFrom('chat_shares')
    .select('id')
    .where('chat_id', '=', chatId)
    .where('user_id', '=', ownerId)
    .executeTakeFirst();
  return row?.id ?? null;
}

/** The read-only view of a link: the snapshot only (no owner identity, no message ids). */
export async function resolveShare(db: Db | Trx, shareId: string) {
  if (!SHARE_ID_PATTERN.test(shareId)) throw notFound('Shared chat');
  const row = await db.selectFrom('chat_shares').selectAll().where('id', '=', shareId).executeTakeFirst();
  if (!row) throw notFound('Shared chat');
  const snap = JSON.parse(row.snapshot) as Snapshot;
  return {
    share_id: row.id,
    title: snap.title,
    messages: snap.messages,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
