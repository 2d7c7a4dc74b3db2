import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { isUniqueViolation } from '../../platform/db/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { actorOf } from '../access/index.js';
import { handleChat, limitSubject, type ChatBody } from './chat.js';
import { embeddingsBodySchema, handleEmbeddings } from './embeddings.js';
import { useOpenAIErrors } from './openai-errors.js';
import { handlePassthrough } from './passthrough.js';
import { attachGateway } from './services.js';
import type { GatewayLimitsTable } from './tables.js';

const tokens = z.number().int().min(1).max(10_000_000).nullish();

export const chatBodySchema = z.looseObject({
  model: z.string().min(1).max(256),
  messages: z
    .array(z.looseObject({ role: z.string().min(1).max(64) }))
    .min(1)
    .max(10_000),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: tokens,
  max_completion_tokens: tokens,
  n: z.number().int().min(1).max(128).nullish(),
  /** HridaAI: files and knowledge bases to retrieve passages from (never sent upstream). */
  files: z
    .array(z.object({ type: z.enum(['file', 'knowledge']), id: z.string().min(1).max(64) }).strict())
    .max(50)
    .nullish(),
});

const timeParam = z
  .union([z.coerce.number().int().min(0), z.iso.datetime({ offset: true })])
  .transform((v) => (typeof v === 'number' ? v : Date.parse(v)));

const limitValue = z.number().int().min(0).max(1_000_000_000_000).nullable().optional();
const limitBody = z
  .object({
    scope: z.enum(['user', 'group', 'key', 'model']),
    subject_id: z.string().min(1).max(256),
    requests_per_minute: limitValue,
    tokens_per_minute: limitValue,
    concurrent_requests: limitValue,
    tokens_per_day: limitValue,
    tokens_per_month: limitValue,
  })
  .strict();

function presentLimit(r: GatewayLimitsTable) {
  return {
    id: r.id,
    scope: r.scope,
    subject_id: r.subject_id,
    requests_per_minute: r.requests_per_minute,
    tokens_per_minute: r.tokens_per_minute,
    concurrent_requests: r.concurrent_requests,
    tokens_per_day: r.tokens_per_day,
    tokens_per_month: r.tokens_per_month,
    updated_by: r.updated_by,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

const GROUPS = {
  user: 'user_id',
  key: 'key_id',
  model: 'model_id',
  base_model: 'base_model_id',
  connection: 'connection_id',
  route: 'route',
  status: 'status',
} as const;

export function registerGatewayRoutes(app: FastifyInstance, ctx: AppContext) {
  const svc = attachGateway(app, ctx);

  // ---- OpenAI-compatible routes: the OpenAI error envelope, errors of the auth hook included.
  void app.register(async (scope) => {
    useOpenAIErrors(scope);
    for (const url of ['/api/chat/completions', '/api/v1/chat/completions'])
      route(scope, {
        method: 'POST',
        url,
        auth: 'session-or-key',
        policy: 'model grant on every model of the preset chain + limits (gateway)',
        tags: ['gateway'],
        summary: 'OpenAI-compatible chat completion (streaming with `stream: true`)',
        bodyLimit: ctx.config.GATEWAY_MAX_BODY_SIZE,
        body: chatBodySchema,
        handler: async (req, reply) => handleChat(svc, ctx, req, reply, req.data.body as ChatBody),
      });
    for (const url of ['/api/embeddings', '/api/v1/embeddings'])
      route(scope, {
        method: 'POST',
        url,
        auth: 'session-or-key',
        policy: 'model grant on every model of the preset chain + limits (gateway)',
        tags: ['gateway'],
        summary: 'OpenAI-compatible embeddings',
        bodyLimit: ctx.config.GATEWAY_MAX_BODY_SIZE,
        body: embeddingsBodySchema,
        handler: async (req, reply) => handleEmbeddings(svc, ctx, req, reply, req.data.body),
      });

    route(scope, {
      method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      url: '/api/openai/*',
      auth: 'session-or-key',
      policy: 'ENABLE_OPENAI_API_PASSTHROUGH + model grant (when a model is named) + limits + audit',
      tags: ['gateway'],
      summary: 'Pass-through to an admin OpenAI connection (403 unless ENABLE_OPENAI_API_PASSTHROUGH=true)',
      bodyLimit: ctx.config.GATEWAY_MAX_BODY_SIZE,
      params: z.object({ '*': z.string().max(2048) }),
      handler: async (req, reply) => handlePassthrough(svc, ctx, req, reply, req.data.params['*']),
    });
  });

  // ---- usage
  const usageQuery = z.object({
    from: timeParam.optional(),
    to: timeParam.optional(),
    group_by: z.enum(['user', 'key', 'model', 'base_model', 'connection', 'route', 'status', 'day']).default('model'),
    user_id: z.string().max(64).optional(),
    key_id: z.string().max(64).optional(),
    model: z.string().max(256).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  });

  async function report(q: z.infer<typeof usageQuery>, onlyUser: string | null) {
    await svc.usage.flush();
    const to = q.to ?? Date.now();
    const from = q.from ?? to - 30 * 86_400_000;
    if (from > to) throw new AppError('validation_failed', 'from must not be after to');
    let base = ctx.db.selectFrom('gateway_usage').where('created_at', '>=', from).where('created_at', '<', to);
    if (onlyUser) base = base.where('user_id', '=', onlyUser);
    else if (q.user_id) base = base.where('user_id', '=', q.user_id);
    if (q.key_id) base = base.where('key_id', '=', q.key_id);
    if (q.model) base = base.where((eb) => eb.or([eb('model_id', '=', q.model!), eb('base_model_id', '=', q.model!)]));
    const groupExpr =
      q.group_by === 'day'
        ? sql<string>`cast(created_at / 86400000 as bigint)`
        : sql<string>`${sql.ref(GROUPS[q.group_by])}`;
    const aggregates = [
      sql<number>`count(*)`.as('requests'),
      sql<number>`coalesce(sum(prompt_tokens), 0)`.as('prompt_tokens'),
      sql<number>`coalesce(sum(completion_tokens), 0)`.as('completion_tokens'),
      sql<number>`coalesce(sum(total_tokens), 0)`.as('total_tokens'),
      sql<number>`coalesce(sum(case when status = 'error' then 1 else 0 end), 0)`.as('errors'),
      sql<number>`coalesce(sum(case when status = 'aborted' then 1 else 0 end), 0)`.as('aborted'),
      sql<number>`coalesce(sum(case when usage_source = 'estimated' then 1 else 0 end), 0)`.as('estimated'),
    ] as const;
    const rows = await base
      .select([groupExpr.as('grp'), ...aggregates])
      .groupBy(groupExpr)
      .orderBy(sql`sum(total_tokens)`, 'desc')
      .limit(q.limit)
      .execute();
    const totals = await base.select([...aggregates]).executeTakeFirst();
    const num = (v: unknown) => Number(v ?? 0);
    const shape = (r: Record<string, unknown>) => ({
      requests: num(r.requests),
      prompt_tokens: num(r.prompt_tokens),
      completion_tokens: num(r.completion_tokens),
      total_tokens: num(r.total_tokens),
      errors: num(r.errors),
      aborted: num(r.aborted),
      estimated: num(r.estimated),
    });
    return {
      from,
      to,
      group_by: q.group_by,
      items: rows.map((r) => ({
        group:
          q.group_by === 'day'
            ? new Date(Number(r.grp) * 86_400_000).toISOString().slice(0, 10)
            : r.grp === null
              ? null
              : String(r.grp),
        ...shape(r as Record<string, unknown>),
      })),
      totals: shape((totals ?? {}) as Record<string, unknown>),
    };
  }

  route(app, {
    method: 'GET',
    url: '/api/v1/usage',
    auth: 'admin',
    policy: 'admin:usage.report',
    tags: ['gateway'],
    summary: 'Token usage by user, key, model, connection, route, status or day over a time range',
    query: usageQuery,
    handler: async (req) => report(req.data.query, null),
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/usage/me',
    auth: 'session-or-key',
    policy: 'self:usage (user id in WHERE)',
    tags: ['gateway'],
    query: usageQuery.omit({ user_id: true }),
    handler: async (req) => report({ ...req.data.query, user_id: undefined }, req.auth!.user.id),
  });

  // ---- limits and budgets
  route(app, {
    method: 'GET',
    url: '/api/v1/gateway/limits',
    auth: 'admin',
    policy: 'admin:gateway.limits.list',
    tags: ['gateway'],
    query: z.object({ scope: z.enum(['user', 'group', 'key', 'model']).optional() }),
    handler: async (req) => {
      let q = ctx.db.selectFrom('gateway_limits').selectAll();
      if (req.data.query.scope) q = q.where('scope', '=', req.data.query.scope);
      const rows = await q.orderBy('scope').orderBy('subject_id').execute();
      return {
        items: rows.map(presentLimit),
        defaults: {
          requests_per_minute: ctx.config.GATEWAY_USER_REQUESTS_PER_MINUTE,
          tokens_per_minute: ctx.config.GATEWAY_USER_TOKENS_PER_MINUTE,
          concurrent_requests: ctx.config.GATEWAY_USER_CONCURRENT_REQUESTS,
          tokens_per_day: ctx.config.GATEWAY_USER_TOKENS_PER_DAY,
          tokens_per_month: ctx.config.GATEWAY_USER_TOKENS_PER_MONTH,
        },
      };
    },
  });

  route(app, {
    method: 'PUT',
    url: '/api/v1/gateway/limits',
    auth: 'admin',
    policy: 'admin:gateway.limits.set',
    tags: ['gateway'],
    summary: 'Creates or replaces the limits of a user, group, API key or model (null: inherit, 0: unlimited)',
    body: limitBody,
    handler: async (req) => {
      const b = req.data.body;
      const row = await ctx.db.transaction().execute(async (trx) => {
        const exists =
          b.scope === 'user'
            ? await trx.selectFrom('users').select('id').where('id', '=', b.subject_id).executeTakeFirst()
            : b.scope === 'group'
              ? await trx.selectFrom('groups').select('id').where('id', '=', b.subject_id).executeTakeFirst()
              : b.scope === 'key'
                ? await trx.selectFrom('api_keys').select('id').where('id', '=', b.subject_id).executeTakeFirst()
                : { id: b.subject_id };
        if (!exists) throw notFound(b.scope === 'key' ? 'API key' : b.scope === 'user' ? 'User' : 'Group');
        const before = await trx
          .selectFrom('gateway_limits')
          .selectAll()
          .where('scope', '=', b.scope)
          .where('subject_id', '=', b.subject_id)
          .executeTakeFirst();
        const now = Date.now();
        const values = {
          requests_per_minute: b.requests_per_minute ?? null,
          tokens_per_minute: b.tokens_per_minute ?? null,
          concurrent_requests: b.concurrent_requests ?? null,
          tokens_per_day: b.tokens_per_day ?? null,
          tokens_per_month: b.tokens_per_month ?? null,
          updated_by: req.auth!.actorId,
          updated_at: now,
        };
        let after: GatewayLimitsTable;
        if (before) {
          await trx.updateTable('gateway_limits').set(values).where('id', '=', before.id).execute();
          after = { ...before, ...values };
        } else {
          after = { id: randomUUID(), scope: b.scope, subject_id: b.subject_id, created_at: now, ...values };
          try {
            await trx.insertInto('gateway_limits').values(after).execute();
          } catch (e) {
            if (isUniqueViolation(e)) throw new AppError('conflict', 'These limits were just created; try again');
            throw e;
          }
        }
        await ctx.audit.record(trx, {
          action: before ? 'gateway_limit.updated' : 'gateway_limit.created',
          ...fromRequest(req),
          resourceType: 'gateway_limit',
          resourceId: after.id,
          before: before ? presentLimit(before) : undefined,
          after: presentLimit(after),
        });
        return after;
      });
      await svc.limits.invalidate();
      return presentLimit(row);
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/gateway/limits/:id',
    auth: 'admin',
    policy: 'admin:gateway.limits.delete',
    tags: ['gateway'],
    params: z.object({ id: z.string().min(1).max(64) }),
    handler: async (req) => {
      await ctx.db.transaction().execute(async (trx) => {
        const before = await trx
          .selectFrom('gateway_limits')
          .selectAll()
          .where('id', '=', req.data.params.id)
          .executeTakeFirst();
        if (!before) throw notFound('Limit');
        await trx.deleteFrom('gateway_limits').where('id', '=', before.id).execute();
        await ctx.audit.record(trx, {
          action: 'gateway_limit.deleted',
          ...fromRequest(req),
          resourceType: 'gateway_limit',
          resourceId: before.id,
          before: presentLimit(before),
        });
      });
      await svc.limits.invalidate();
      return { status: 'deleted' };
    },
  });

  // The caller's own effective limits (what the x-ratelimit-* headers count against).
  route(app, {
    method: 'GET',
    url: '/api/v1/gateway/limits/me',
    auth: 'session-or-key',
    policy: 'self:gateway.limits',
    tags: ['gateway'],
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const subject = await limitSubject(svc, ctx, actor, []);
      const { ops } = await svc.limits.plan(subject, 0);
      return {
        items: ops
          .filter((o) => o.who === 'user' || o.who === 'key' || o.who.startsWith('group:'))
          .map((o) => ({ applies_to: o.who, kind: o.dim, limit: o.op.limit })),
      };
    },
  });
}
