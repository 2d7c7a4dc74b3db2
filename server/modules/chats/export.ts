import { afterKey, type Db } from '../../platform/db/index.js';
import { presentChatSummary, presentMessage } from './service.js';
import type { ChatMessage } from './tables.js';

const BATCH = 100;

/**
 * Every chat of every user as JSON Lines, read in keyset-paged batches so that memory stays flat
 * whatever the size of the database. Each line: `{"type":"chat", user: {id, email, name}, …chat,
 * messages}`. Only whitelisted columns are selected: no password hash, key or secret can appear.
 */
export async function* exportAllChats(db: Db): AsyncGenerator<string> {
  let after: { created_at: number; id: string } | null = null;
  for (;;) {
    let q = db
      .selectFrom('chats')
      .innerJoin('users', 'users.id', 'chats.user_id')
      .select([
        'chats.id',
        'chats.user_id',
        'chats.folder_id',
        'chats.title',
        'chats.pinned',
        'chats.archived',
        'chats.created_at',
        'chats.updated_at',
        'users.email as user_email',
        'users.name as user_name',
      ])
      .orderBy('chats.created_at')
      .orderBy('chats.id')
      .limit(BATCH);
    if (after) q = q.where(afterKey('chats.created_at', 'chats.id', after));
    const chats = await q.execute();
    if (chats.length === 0) return;
    const messages = await db
      .selectFrom('chat_messages')
      .selectAll()
      .where(
        'chat_id',
        'in',
        chats.map((c) => c.id),
      )
      .orderBy('chat_id')
      .orderBy('seq')
      .execute();
    const byChat = new Map<string, ChatMessage[]>();
    for (const m of messages) {
      const list = byChat.get(m.chat_id);
      if (list) list.push(m);
      else byChat.set(m.chat_id, [m]);
    }
    let out = '';
    for (const c of chats) {
      out +=
        JSON.stringify({
          type: 'chat',
          user: { id: c.user_id, email: c.user_email, name: c.user_name },
          ...presentChatSummary(c),
          messages: (byChat.get(c.id) ?? []).map(presentMessage),
        }) + '\n';
    }
    yield out;
    const last = chats[chats.length - 1]!;
    after = { created_at: last.created_at, id: last.id };
    if (chats.length < BATCH) return;
  }
}
