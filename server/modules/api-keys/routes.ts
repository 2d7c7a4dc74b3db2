import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { actorOf } from '../access/actor.js';
import { requirePermission } from '../access/permissions.js';
import type { ApiKeysTable } from '../access/tables.js';
import { registerAdminApiKeyRoutes } from './admin-routes.js';
import { hashKey, newKey } from './format.js';
import { normaliseEndpointEntry } from './restrictions.js';
import { apiKeyService } from './service.js';

export const MAX_KEYS_PER_USER = 100;

const endpointList = z
  .array(z.string().min(1).max(512))
  .max(50)
  .transform((xs, c) => {
    const out: string[] = [];
    for (const x of xs) {
      try {
        const p = normaliseEndpointEntry(x);
        if (!out.includes(p)) out.push(p);
      } catch (e) {
        c.addIssue({ code: 'custom', message: String(e) });
        return z.NEVER;
      }
    }
    return out;
  });

function parseJsonList(v: string | null): string[] | null {
  if (v === null) return null;
  try {
    const x = JSON.parse(v) as unknown;
    return Array.isArray(x) ? (x as string[]) : [];
  } catch {
    return [];
  }
}

/** Metadata only: the secret and its hash never leave the server. */
export function presentKey(k: Omit<ApiKeysTable, 'hash' | 'pepper_kid' | 'user_id'>) {
  return {
    id: k.id,
    name: k.name,
    prefix: `sk-${k.id}`,
    hint: k.hint,
    allowed_endpoints: parseJsonList(k.allowed_endpoints),
    allowed_models: parseJsonList(k.allowed_models),
    created_at: k.created_at,
    updated_at: k.updated_at,
    rotated_at: k.rotated_at,
    expires_at: k.expires_at,
    last_used_at: k.last_used_at,
  };
}

export async function registerApiKeyRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const service = apiKeyService(ctx);
  await service.start();
  registerAdminApiKeyRoutes(app, ctx, service);

  /** Creating or rotating a key: the feature is on, the caller may use keys, and is not impersonating. */
  async function mayIssue(req: Parameters<typeof actorOf>[1]) {
    if (!ctx.config.ENABLE_API_KEYS) throw new AppError('api_keys_disabled', 'API keys are disabled on this server');
    const auth = req.auth!;
    if (auth.actorId !== auth.user.id)
      throw new AppError('forbidden', 'API keys cannot be created or rotated while impersonating');
    await requirePermission(ctx.db, actorOf(ctx, req), 'features.api_keys');
  }

  route(app, {
    method: 'POST',
    url: '/api/v1/api-keys',
    auth: 'session',
    policy: 'self:api-keys.create (ENABLE_API_KEYS + features.api_keys; signed-in session only)',
    tags: ['api-keys'],
    summary: 'Create an API key; the key is in this response only',
    body: z
      .object({
        name: z.string().trim().min(1).max(200),
        expires_at: z.number().int().positive().nullable().optional(),
        allowed_endpoints: endpointList.nullable().optional(),
        allowed_models: z.array(z.string().min(1).max(256)).max(200).nullable().optional(),
      })
      .strict(),
    handler: async (req, reply) => {
      await mayIssue(req);
      const auth = req.auth!;
      const b = req.data.body;
      const now = Date.now();
      if (b.expires_at != null && b.expires_at <= now)
        throw new AppError('validation_failed', 'Invalid body: expires_at: must be in the future (milliseconds)');
      const { id, key, hint } = newKey();
      const row: ApiKeysTable = {
        id,
        user_id: auth.user.id,
        name: b.name,
        hash: hashKey(ctx.keyring.current.derive('api-key-pepper'), key),
        pepper_kid: ctx.keyring.current.kid,
        hint,
        allowed_endpoints: b.allowed_endpoints ? JSON.stringify(b.allowed_endpoints) : null,
        allowed_models: b.allowed_models ? JSON.stringify([...new Set(b.allowed_models)]) : null,
        created_at: now,
        updated_at: now,
        rotated_at: null,
        expires_at: b.expires_at ?? null,
        last_used_at: null,
      };
      await ctx.db.transaction().execute(async (trx) => {
        const [{ n }] = (await trx
          .selectFrom('api_keys')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('user_id', '=', auth.user.id)
          .execute()) as [{ n: number }];
        if (Number(n) >= MAX_KEYS_PER_USER)
          throw new AppError('api_key_limit', `At most ${MAX_KEYS_PER_USER} API keys per account; delete one first`);
        await trx.insertInto('api_keys').values(row).execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'api_key.created',
          resourceType: 'api_key',
          resourceId: id,
          after: presentKey(row),
          result: 'success',
        });
      });
      reply.code(201);
      return { key, ...presentKey(row) };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/api-keys',
    auth: 'session',
    policy: 'self:api-keys.list (owner in WHERE)',
    tags: ['api-keys'],
    handler: async (req) => {
      const rows = await ctx.db
        .selectFrom('api_keys')
        .selectAll()
        .where('user_id', '=', req.auth!.user.id)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .execute();
      return { items: rows.map(presentKey) };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/api-keys/:id',
    auth: 'session',
    policy: 'self:api-keys.delete (owner in WHERE)',
    tags: ['api-keys'],
    summary: 'Revoke (delete) a key; it stops working at once',
    params: z.object({ id: z.string().min(1).max(64) }),
    handler: async (req) => {
      const auth = req.auth!;
      await ctx.db.transaction().execute(async (trx) => {
        const before = await trx
          .selectFrom('api_keys')
          .selectAll()
          .where('id', '=', req.data.params.id)
          .where('user_id', '=', auth.user.id)
          .executeTakeFirst();
        if (!before) throw notFound('API key');
        await trx.deleteFrom('api_keys').where('id', '=', before.id).where('user_id', '=', auth.user.id).execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'api_key.deleted',
          resourceType: 'api_key',
          resourceId: before.id,
          before: presentKey(before),
          result: 'success',
        });
      });
      await service.invalidate({ key: req.data.params.id });
      return { status: 'deleted' };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/api-keys/:id/rotate',
    auth: 'session',
    policy: 'self:api-keys.rotate (owner in WHERE; same checks as create)',
    tags: ['api-keys'],
    summary: 'Replace the secret of a key (same id and settings); the old key stops at once',
    params: z.object({ id: z.string().min(1).max(64) }),
    handler: async (req) => {
      const auth = req.auth!;
      const mine = await ctx.db
        .selectFrom('api_keys')
        .select('id')
        .where('id', '=', req.data.params.id)
        .where('user_id', '=', auth.user.id)
        .executeTakeFirst();
      if (!mine) throw notFound('API key');
      await mayIssue(req);
      const now = Date.now();
      const { key, hint } = newKey(req.data.params.id);
      const after = await ctx.db.transaction().execute(async (trx) => {
        const before = await trx
          .selectFrom('api_keys')
          .selectAll()
          .where('id', '=', req.data.params.id)
          .where('user_id', '=', auth.user.id)
          .executeTakeFirst();
        if (!before) throw notFound('API key');
        const patch = {
          hash: hashKey(ctx.keyring.current.derive('api-key-pepper'), key),
          pepper_kid: ctx.keyring.current.kid,
          hint,
          rotated_at: now,
          updated_at: now,
        };
        await trx
          .updateTable('api_keys')
          .set(patch)
          .where('id', '=', before.id)
          .where('user_id', '=', auth.user.id)
          .execute();
        const next = { ...before, ...patch };
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'api_key.rotated',
          resourceType: 'api_key',
          resourceId: before.id,
          before: presentKey(before),
          after: presentKey(next),
          result: 'success',
        });
        return next;
      });
      await service.invalidate({ key: after.id });
      return { key, ...presentKey(after) };
    },
  });
}
