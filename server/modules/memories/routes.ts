import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { route } from '../../platform/http/route.js';
import {
  MAX_MEMORY_LENGTH,
  createMemory,
  deleteMemory,
  getMemory,
  listMemories,
  memoriesPermitted,
  memoryPreference,
  prepareContent,
  presentMemory,
  requireMemories,
  setMemoryPreference,
  updateMemory,
} from './service.js';

const idParam = z.object({ id: z.string().min(1).max(64) }).strict();
const content = z.string().trim().min(1).max(MAX_MEMORY_LENGTH);

/**
 * /api/v1/memories: the caller's own memories. No route accepts a user id — bodies and queries are
 * strict, so `user_id` is refused — and every query carries the caller's id in its WHERE.
 */
export function registerMemoryRoutes(app: FastifyInstance, ctx: AppContext) {
  const me = (req: FastifyRequest) => req.auth!.user;

  route(app, {
    method: 'GET',
    url: '/api/v1/memories',
    auth: 'session-or-key',
    policy: 'owner:memories.list (caller id in WHERE; features.memories)',
    tags: ['memories'],
    query: z
      .object({
        q: z.string().max(200).optional(),
        page: z.coerce.number().int().min(1).max(100_000).default(1),
        limit: z.coerce.number().int().min(1).max(100).default(50),
      })
      .strict(),
    handler: async (req) => {
      const user = me(req);
      await requireMemories(ctx, ctx.db, user);
      const { q, page, limit } = req.data.query;
      const r = await listMemories(ctx.db, user.id, { q, page, limit });
      return { items: r.items.map(presentMemory), total: r.total, page, limit };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/memories',
    auth: 'session-or-key',
    policy: 'owner:memories.create (owner = caller; features.memories)',
    tags: ['memories'],
    summary: 'With MEMORY_PII_REDACTION=true the content is redacted before it is stored.',
    body: z.object({ content }).strict(),
    handler: async (req, reply) => {
      const user = me(req);
      await requireMemories(ctx, ctx.db, user);
      const prepared = prepareContent(ctx, req.data.body.content);
      const m = await createMemory(ctx.db, user.id, prepared.content);
      reply.code(201);
      return { ...presentMemory(m), redacted: prepared.redacted };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/memories',
    auth: 'session-or-key',
    policy: 'owner:memories.delete-all (caller id in WHERE)',
    tags: ['memories'],
    handler: async (req) => {
      const user = me(req);
      await requireMemories(ctx, ctx.db, user);
      const r = await ctx.db.deleteFrom('memories').where('user_id', '=', user.id).executeTakeFirst();
      return { status: 'deleted', count: Number(r.numDeletedRows) };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/memories/settings',
    auth: 'session-or-key',
    policy: 'owner:memories.settings.read',
    tags: ['memories'],
    handler: async (req) => {
      const user = me(req);
      return {
        inject_into_chats: await memoryPreference(ctx.db, user.id),
        permitted: await memoriesPermitted(ctx, ctx.db, user),
      };
    },
  });

  route(app, {
    method: 'PUT',
    url: '/api/v1/memories/settings',
    auth: 'session-or-key',
    policy: 'owner:memories.settings.write (features.memories)',
    tags: ['memories'],
    summary: 'Whether the caller’s memories are added to the context of their chat requests.',
    body: z.object({ inject_into_chats: z.boolean() }).strict(),
    handler: async (req) => {
      const user = me(req);
      await requireMemories(ctx, ctx.db, user);
      await setMemoryPreference(ctx.db, user.id, req.data.body.inject_into_chats);
      return { inject_into_chats: req.data.body.inject_into_chats, permitted: true };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/memories/:id',
    auth: 'session-or-key',
    policy: 'owner:memories.read (caller id in WHERE)',
    tags: ['memories'],
    params: idParam,
    handler: async (req) => {
      const user = me(req);
      await requireMemories(ctx, ctx.db, user);
      return presentMemory(await getMemory(ctx.db, user.id, req.data.params.id));
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/memories/:id',
    auth: 'session-or-key',
    policy: 'owner:memories.update (caller id in WHERE)',
    tags: ['memories'],
    params: idParam,
    body: z.object({ content }).strict(),
    handler: async (req) => {
      const user = me(req);
      await requireMemories(ctx, ctx.db, user);
      const prepared = prepareContent(ctx, req.data.body.content);
      const m = await updateMemory(ctx.db, user.id, req.data.params.id, prepared.content);
      return { ...presentMemory(m), redacted: prepared.redacted };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/memories/:id',
    auth: 'session-or-key',
    policy: 'owner:memories.delete (caller id in WHERE)',
    tags: ['memories'],
    params: idParam,
    handler: async (req) => {
      const user = me(req);
      await requireMemories(ctx, ctx.db, user);
      await deleteMemory(ctx.db, user.id, req.data.params.id);
      return { status: 'deleted' };
    },
  });
}
