import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { isUniqueViolation } from '../../platform/db/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { accessibleWhere, actorOf, decideOne, removeResourceGrants, requirePermission } from '../access/index.js';
import { loadPrompt, presentPrompt, PROMPT_TYPE, type Prompt } from './service.js';

const idParam = z.object({ id: z.string().min(1).max(64) });
const command = z
  .string()
  .trim()
  .transform((v) => v.replace(/^\//, '').toLowerCase())
  .pipe(
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'letters, digits, - and _ (an optional leading / is dropped)'),
  );
const title = z.string().trim().min(1).max(200);
const content = z.string().min(1).max(100_000);

function commandTaken(e: unknown): never {
  if (isUniqueViolation(e)) throw new AppError('conflict', 'You already have a prompt with this command');
  throw e;
}

export function registerPromptRoutes(app: FastifyInstance, ctx: AppContext) {
  route(app, {
    method: 'POST',
    url: '/api/v1/prompts',
    auth: 'session-or-key',
    policy: 'permission:workspace.prompts (creator becomes owner)',
    tags: ['prompts'],
    body: z.object({ command, title, content }).strict(),
    handler: async (req, reply) => {
      const actor = actorOf(ctx, req);
      await requirePermission(ctx.db, actor, 'workspace.prompts');
      const now = Date.now();
      const p: Prompt = {
        id: randomUUID(),
        user_id: actor.userId,
        command: req.data.body.command,
        title: req.data.body.title,
        content: req.data.body.content,
        created_at: now,
        updated_at: now,
      };
      await ctx.db
        .transaction()
        .execute(async (trx) => {
          await trx.insertInto('prompts').values(p).execute();
          await ctx.audit.record(trx, {
            ...fromRequest(req),
            action: 'prompt.created',
            resourceType: PROMPT_TYPE,
            resourceId: p.id,
            after: { command: p.command, title: p.title },
          });
        })
        .catch(commandTaken);
      reply.code(201);
      return presentPrompt(p);
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/prompts',
    auth: 'session-or-key',
    policy: 'resource:prompt.read (owner, grants, admin bypass in WHERE)',
    tags: ['prompts'],
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const rows = await ctx.db
        .selectFrom('prompts as p')
        .selectAll()
        .where(accessibleWhere(actor, PROMPT_TYPE, 'read', { id: 'p.id', owner: 'p.user_id' }))
        .orderBy('p.command')
        .orderBy('p.id')
        .limit(1000)
        .execute();
      return { items: rows.map(presentPrompt) };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/prompts/:id',
    auth: 'session-or-key',
    policy: 'resource:prompt.read',
    tags: ['prompts'],
    params: idParam,
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const p = await loadPrompt(ctx.db, actor, req.data.params.id, 'read');
      const d = await decideOne(ctx.db, actor, { type: PROMPT_TYPE, id: p.id });
      return {
        ...presentPrompt(p),
        permissions: { read: d.read, write: d.write, share: d.share, delete: d.delete },
      };
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/prompts/:id',
    auth: 'session-or-key',
    policy: 'resource:prompt.write',
    tags: ['prompts'],
    params: idParam,
    body: z.object({ command: command.optional(), title: title.optional(), content: content.optional() }).strict(),
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const p = await loadPrompt(ctx.db, actor, req.data.params.id, 'write');
      const patch = { ...req.data.body, updated_at: Date.now() };
      await ctx.db
        .transaction()
        .execute(async (trx) => {
          const r = await trx
            .updateTable('prompts')
            .set(patch)
            .where('id', '=', p.id)
            .where(accessibleWhere(actor, PROMPT_TYPE, 'write', { id: 'prompts.id', owner: 'prompts.user_id' }))
            .executeTakeFirst();
          if (Number(r.numUpdatedRows) !== 1) throw notFound('Prompt');
          await ctx.audit.record(trx, {
            ...fromRequest(req),
            action: 'prompt.updated',
            resourceType: PROMPT_TYPE,
            resourceId: p.id,
            before: { command: p.command, title: p.title },
            after: { command: req.data.body.command, title: req.data.body.title },
          });
        })
        .catch(commandTaken);
      return presentPrompt({ ...p, ...patch });
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/prompts/:id',
    auth: 'session-or-key',
    policy: 'resource:prompt.delete',
    tags: ['prompts'],
    params: idParam,
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const p = await loadPrompt(ctx.db, actor, req.data.params.id, 'delete');
      await ctx.db.transaction().execute(async (trx) => {
        const r = await trx
          .deleteFrom('prompts')
          .where('id', '=', p.id)
          .where(accessibleWhere(actor, PROMPT_TYPE, 'write', { id: 'prompts.id', owner: 'prompts.user_id' }))
          .executeTakeFirst();
        if (Number(r.numDeletedRows) !== 1) throw notFound('Prompt');
        await removeResourceGrants(trx, { type: PROMPT_TYPE, id: p.id });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'prompt.deleted',
          resourceType: PROMPT_TYPE,
          resourceId: p.id,
          before: { command: p.command, title: p.title },
        });
      });
      return { status: 'deleted' };
    },
  });
}
