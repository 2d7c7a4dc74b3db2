import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { exportAllChats } from './export.js';
import { scheduleChatRetention } from './retention.js';
import {
  appendToOwnedChat,
  chatMessages,
  contentText,
  createChat,
  deleteChatRows,
  getOwnedChat,
  listChats,
  messageContent,
  messageInput,
  MAX_MESSAGES_PER_REQUEST,
  presentChat,
  presentChatSummary,
  presentFolder,
  presentMessage,
  requireOwnedFolder,
} from './service.js';
import { resolveShare, shareChat, shareIdOf, unshareChat } from './shares.js';
import type { ChatFolder } from './tables.js';

const id = z.string().min(1).max(64);
const chatParam = z.object({ id }).strict();
const messageParam = z.object({ id, message_id: id }).strict();
const title = z.string().trim().min(1).max(500);
const folderName = z.string().trim().min(1).max(200);
/** Chat bodies may carry long conversations. */
const CHAT_BODY_LIMIT = 16 * 1024 * 1024;

const listQuery = z
  .object({
    q: z.string().max(200).optional(),
    archived: z.enum(['true', 'false', 'all']).default('false'),
    pinned: z.enum(['true', 'false']).optional(),
    folder_id: id.optional(),
    page: z.coerce.number().int().min(1).max(100_000).default(1),
    limit: z.coerce.number().int().min(1).max(100).default(30),
  })
  .strict();

export function registerChatRoutes(app: FastifyInstance, ctx: AppContext) {
  const me = (req: FastifyRequest) => req.auth!.user;

  // ---- chats

  route(app, {
    method: 'POST',
    url: '/api/v1/chats',
    auth: 'session-or-key',
    policy: 'owner:chats.create (owner = caller; folder_id must be the caller’s)',
    tags: ['chats'],
    bodyLimit: CHAT_BODY_LIMIT,
    body: z
      .object({
        title: title.optional(),
        folder_id: id.nullish(),
        messages: z.array(messageInput).max(MAX_MESSAGES_PER_REQUEST).optional(),
      })
      .strict()
      .default({}),
    handler: async (req, reply) => {
      const b = req.data.body;
      const { chat, messages } = await createChat(ctx.db, me(req).id, {
        title: b.title,
        folderId: b.folder_id ?? null,
        messages: b.messages,
      });
      reply.code(201);
      return presentChat(chat, messages, null);
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/chats',
    auth: 'session-or-key',
    policy: 'owner:chats.list (caller id in WHERE)',
    tags: ['chats'],
    summary: 'Newest first; `q` searches titles and message text; archived chats only with archived=true|all.',
    query: listQuery,
    handler: async (req) => {
      const ownerId = me(req).id;
      const f = req.data.query;
      if (f.folder_id) await requireOwnedFolder(ctx.db, ownerId, f.folder_id);
      const r = await listChats(ctx.db, ownerId, {
        q: f.q,
        archived: f.archived,
        pinned: f.pinned === undefined ? undefined : f.pinned === 'true',
        folderId: f.folder_id,
        page: f.page,
        limit: f.limit,
      });
      return { items: r.items.map(presentChatSummary), total: r.total, page: f.page, limit: f.limit };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/chats/export',
    auth: 'admin',
    policy: 'admin:chats.export (ENABLE_ADMIN_EXPORT; audited)',
    tags: ['chats'],
    summary: 'Every chat of every user as streamed JSON Lines (application/x-ndjson).',
    handler: async (req, reply) => {
      if (!ctx.config.ENABLE_ADMIN_EXPORT)
        throw new AppError('admin_export_disabled', 'Bulk export of chats is disabled on this server');
      await ctx.audit.record(ctx.db, {
        ...fromRequest(req),
        action: 'chat.admin_export',
        resourceType: 'chat',
        resourceId: null,
      });
      const stream = Readable.from(exportAllChats(ctx.db));
      stream.on('error', (e) => req.log.error({ err: e.message }, 'Chat export failed while streaming'));
      reply
        .header('content-type', 'application/x-ndjson; charset=utf-8')
        .header(
          'content-disposition',
          `attachment; filename="hridaai-chats-${new Date().toISOString().slice(0, 10)}.jsonl"`,
        )
        .header('cache-control', 'no-store');
      return reply.send(stream);
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/chats/shared/:share_id',
    auth: 'session-or-key',
    policy: 'authenticated:chats.shared.read (ENABLE_COMMUNITY_SHARING; link holders)',
    tags: ['chats'],
    params: z.object({ share_id: z.string().min(1).max(64) }).strict(),
    handler: async (req, reply) => {
      if (!ctx.config.ENABLE_COMMUNITY_SHARING) throw notFound('Shared chat');
      reply.header('cache-control', 'no-store');
      return resolveShare(ctx.db, req.data.params.share_id);
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/chats/:id',
    auth: 'session-or-key',
    policy: 'owner:chats.read (caller id in WHERE); admin read with ENABLE_ADMIN_CHAT_ACCESS (audited)',
    tags: ['chats'],
    params: chatParam,
    handler: async (req) => {
      const user = me(req);
      const chatId = req.data.params.id;
      const own = await ctx.db
        .selectFrom('chats')
        .selectAll()
        .where('id', '=', chatId)
        .where('user_id', '=', user.id)
        .executeTakeFirst();
      if (own)
        return presentChat(own, await chatMessages(ctx.db, user.id, chatId), await shareIdOf(ctx.db, user.id, chatId));
      if (user.role !== 'admin' || !ctx.config.ENABLE_ADMIN_CHAT_ACCESS) throw notFound('Chat');
      return ctx.db.transaction().execute(async (trx) => {
        const c = await trx.selectFrom('chats').selectAll().where('id', '=', chatId).executeTakeFirst();
        if (!c) throw notFound('Chat');
        const messages = await chatMessages(trx, c.user_id, c.id);
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'chat.admin_read',
          resourceType: 'chat',
          resourceId: c.id,
          details: { owner_id: c.user_id },
        });
        return { ...presentChat(c, messages, null), user_id: c.user_id };
      });
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/chats/:id',
    auth: 'session-or-key',
    policy: 'owner:chats.update (caller id in WHERE; folder_id must be the caller’s)',
    tags: ['chats'],
    summary: 'Rename, pin, archive, or move into a folder (`folder_id: null` takes it out).',
    params: chatParam,
    body: z
      .object({
        title: title.optional(),
        folder_id: id.nullable().optional(),
        pinned: z.boolean().optional(),
        archived: z.boolean().optional(),
      })
      .strict()
      .refine((b) => Object.keys(b).length > 0, 'nothing to change'),
    handler: async (req) => {
      const ownerId = me(req).id;
      const chatId = req.data.params.id;
      const b = req.data.body;
      return ctx.db.transaction().execute(async (trx) => {
        if (b.folder_id) await requireOwnedFolder(trx, ownerId, b.folder_id);
        const patch: Record<string, unknown> = { updated_at: Date.now() };
        if (b.title !== undefined) patch.title = b.title;
        if (b.folder_id !== undefined) patch.folder_id = b.folder_id;
        if (b.pinned !== undefined) patch.pinned = b.pinned ? 1 : 0;
        if (b.archived !== undefined) patch.archived = b.archived ? 1 : 0;
        const r = await trx
          .updateTable('chats')
          .set(patch)
          .where('id', '=', chatId)
          .where('user_id', '=', ownerId)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) throw notFound('Chat');
        return presentChatSummary(await getOwnedChat(trx, ownerId, chatId));
      });
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/chats/:id',
    auth: 'session-or-key',
    policy: 'owner:chats.delete (caller id in WHERE)',
    tags: ['chats'],
    params: chatParam,
    handler: async (req) => {
      const ownerId = me(req).id;
      const n = await ctx.db.transaction().execute((trx) => deleteChatRows(trx, ownerId, [req.data.params.id]));
      if (n === 0) throw notFound('Chat');
      return { status: 'deleted' };
    },
  });

  // ---- messages

  route(app, {
    method: 'POST',
    url: '/api/v1/chats/:id/messages',
    auth: 'session-or-key',
    policy: 'owner:chats.messages.append (caller id in WHERE)',
    tags: ['chats'],
    bodyLimit: CHAT_BODY_LIMIT,
    params: chatParam,
    body: z.object({ messages: z.array(messageInput).min(1).max(MAX_MESSAGES_PER_REQUEST) }).strict(),
    handler: async (req, reply) => {
      const rows = await appendToOwnedChat(ctx.db, me(req).id, req.data.params.id, req.data.body.messages);
      reply.code(201);
      return { items: rows.map(presentMessage) };
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/chats/:id/messages/:message_id',
    auth: 'session-or-key',
    policy: 'owner:chats.messages.update (chat, message and caller id in WHERE)',
    tags: ['chats'],
    params: messageParam,
    body: z.object({ content: messageContent }).strict(),
    handler: async (req) => {
      const ownerId = me(req).id;
      const { id: chatId, message_id } = req.data.params;
      const content = req.data.body.content;
      return ctx.db.transaction().execute(async (trx) => {
        const now = Date.now();
        const r = await trx
          .updateTable('chat_messages')
          .set({ content: JSON.stringify(content), text: contentText(content), updated_at: now })
          .where('id', '=', message_id)
          .where('chat_id', '=', chatId)
          .where('user_id', '=', ownerId)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) throw notFound('Message');
        await trx
          .updateTable('chats')
          .set({ updated_at: now })
          .where('id', '=', chatId)
          .where('user_id', '=', ownerId)
          .execute();
        const m = await trx
          .selectFrom('chat_messages')
          .selectAll()
          .where('id', '=', message_id)
          .where('user_id', '=', ownerId)
          .executeTakeFirstOrThrow();
        return presentMessage(m);
      });
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/chats/:id/messages/:message_id',
    auth: 'session-or-key',
    policy: 'owner:chats.messages.delete (chat, message and caller id in WHERE)',
    tags: ['chats'],
    params: messageParam,
    handler: async (req) => {
      const ownerId = me(req).id;
      const { id: chatId, message_id } = req.data.params;
      await ctx.db.transaction().execute(async (trx) => {
        const r = await trx
          .deleteFrom('chat_messages')
          .where('id', '=', message_id)
          .where('chat_id', '=', chatId)
          .where('user_id', '=', ownerId)
          .executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) throw notFound('Message');
        await trx
          .updateTable('chats')
          .set({ updated_at: Date.now() })
          .where('id', '=', chatId)
          .where('user_id', '=', ownerId)
          .execute();
      });
      return { status: 'deleted' };
    },
  });

  // ---- share links

  route(app, {
    method: 'POST',
    url: '/api/v1/chats/:id/share',
    auth: 'session-or-key',
    policy: 'owner:chats.share (ENABLE_COMMUNITY_SHARING; caller id in WHERE; audited)',
    tags: ['chats'],
    summary: 'Creates the link (201) or refreshes its snapshot (200, same id).',
    params: chatParam,
    handler: async (req, reply) => {
      if (!ctx.config.ENABLE_COMMUNITY_SHARING)
        throw new AppError('sharing_disabled', 'Sharing chats is disabled on this server');
      const ownerId = me(req).id;
      const chatId = req.data.params.id;
      const r = await ctx.db.transaction().execute(async (trx) => {
        const out = await shareChat(trx, ownerId, chatId);
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: out.created ? 'chat.share_created' : 'chat.share_refreshed',
          resourceType: 'chat',
          resourceId: chatId,
        });
        return out;
      });
      reply.code(r.created ? 201 : 200);
      return { share_id: r.share.id, created_at: r.share.created_at, updated_at: r.share.updated_at };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/chats/:id/share',
    auth: 'session-or-key',
    policy: 'owner:chats.unshare (caller id in WHERE; audited)',
    tags: ['chats'],
    params: chatParam,
    handler: async (req) => {
      const ownerId = me(req).id;
      const chatId = req.data.params.id;
      await ctx.db.transaction().execute(async (trx) => {
        await unshareChat(trx, ownerId, chatId);
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'chat.share_revoked',
          resourceType: 'chat',
          resourceId: chatId,
        });
      });
      return { status: 'revoked' };
    },
  });

  // ---- folders

  route(app, {
    method: 'GET',
    url: '/api/v1/folders',
    auth: 'session-or-key',
    policy: 'owner:folders.list (caller id in WHERE)',
    tags: ['chats'],
    handler: async (req) => {
      const rows = await ctx.db
        .selectFrom('chat_folders')
        .selectAll()
        .where('user_id', '=', me(req).id)
        .orderBy('name')
        .orderBy('id')
        .execute();
      return { items: rows.map(presentFolder) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/folders',
    auth: 'session-or-key',
    policy: 'owner:folders.create (owner = caller)',
    tags: ['chats'],
    body: z.object({ name: folderName }).strict(),
    handler: async (req, reply) => {
      const now = Date.now();
      const f: ChatFolder = {
        id: randomUUID(),
        user_id: me(req).id,
        name: req.data.body.name,
        created_at: now,
        updated_at: now,
      };
      await ctx.db.insertInto('chat_folders').values(f).execute();
      reply.code(201);
      return presentFolder(f);
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/folders/:id',
    auth: 'session-or-key',
    policy: 'owner:folders.update (caller id in WHERE)',
    tags: ['chats'],
    params: chatParam,
    body: z.object({ name: folderName }).strict(),
    handler: async (req) => {
      const ownerId = me(req).id;
      const r = await ctx.db
        .updateTable('chat_folders')
        .set({ name: req.data.body.name, updated_at: Date.now() })
        .where('id', '=', req.data.params.id)
        .where('user_id', '=', ownerId)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw notFound('Folder');
      return presentFolder(await requireOwnedFolder(ctx.db, ownerId, req.data.params.id));
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/folders/:id',
    auth: 'session-or-key',
    policy: 'owner:folders.delete (caller id in WHERE; its chats are kept, outside any folder)',
    tags: ['chats'],
    params: chatParam,
    handler: async (req) => {
      const ownerId = me(req).id;
      const folderId = req.data.params.id;
      await ctx.db.transaction().execute(async (trx) => {
        await requireOwnedFolder(trx, ownerId, folderId);
        await trx
          .updateTable('chats')
          .set({ folder_id: null })
          .where('folder_id', '=', folderId)
          .where('user_id', '=', ownerId)
          .execute();
        await trx.deleteFrom('chat_folders').where('id', '=', folderId).where('user_id', '=', ownerId).execute();
      });
      return { status: 'deleted' };
    },
  });

  // ---- admin access

  route(app, {
    method: 'GET',
    url: '/api/v1/users/:id/chats',
    auth: 'admin',
    policy: 'admin:chats.list-for-user (ENABLE_ADMIN_CHAT_ACCESS; audited)',
    tags: ['chats'],
    params: z.object({ id }).strict(),
    query: listQuery,
    handler: async (req) => {
      if (!ctx.config.ENABLE_ADMIN_CHAT_ACCESS) throw notFound('User');
      const ownerId = req.data.params.id;
      const f = req.data.query;
      return ctx.db.transaction().execute(async (trx) => {
        const u = await trx.selectFrom('users').select('id').where('id', '=', ownerId).executeTakeFirst();
        if (!u) throw notFound('User');
        if (f.folder_id) await requireOwnedFolder(trx, ownerId, f.folder_id);
        const r = await listChats(trx, ownerId, {
          q: f.q,
          archived: f.archived,
          pinned: f.pinned === undefined ? undefined : f.pinned === 'true',
          folderId: f.folder_id,
          page: f.page,
          limit: f.limit,
        });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'chat.admin_list',
          resourceType: 'user',
          resourceId: ownerId,
          details: { owner_id: ownerId, count: r.items.length },
        });
        return { items: r.items.map(presentChatSummary), total: r.total, page: f.page, limit: f.limit };
      });
    },
  });

  scheduleChatRetention(app, ctx);
}
