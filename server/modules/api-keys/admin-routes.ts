import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { afterKey } from '../../platform/db/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { presentKey } from './routes.js';
import type { ApiKeyService } from './service.js';

const idParam = z.object({ id: z.string().min(1).max(64) });

/**
 * The columns an admin view reads: the key's metadata and its owner. Listed one by one so that
 * the hash (and the pepper id) are never selected, let alone sent.
 */
const COLUMNS = [
  'api_keys.id',
  'api_keys.user_id',
  'api_keys.name',
  'api_keys.hint',
  'api_keys.allowed_endpoints',
  'api_keys.allowed_models',
  'api_keys.created_at',
  'api_keys.updated_at',
  'api_keys.rotated_at',
  'api_keys.expires_at',
  'api_keys.last_used_at',
  'users.email as owner_email',
  'users.name as owner_name',
] as const;

type AdminKeyRow = Parameters<typeof presentKey>[0] & { user_id: string; owner_email: string; owner_name: string };

function presentAdminKey(r: AdminKeyRow) {
  return { ...presentKey(r), owner: { id: r.user_id, email: r.owner_email, name: r.owner_name } };
}

function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`;
}

/** Cursors are opaque to clients: base64url of "<created_at>:<id>" of the last item of a page. */
function encodeCursor(k: { created_at: number; id: string }): string {
  return Buffer.from(`${k.created_at}:${k.id}`).toString('base64url');
}

function decodeCursor(c: string): { created_at: number; id: string } {
  const m = /^(\d{1,15}):([0-9A-Za-z_-]{1,64})$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  if (!m) throw new AppError('validation_failed', 'Invalid query: cursor is not a cursor from this API');
  return { created_at: Number(m[1]), id: m[2]! };
}

/** Admin views of every user's API keys, and revocation of any key. */
export function registerAdminApiKeyRoutes(app: FastifyInstance, ctx: AppContext, service: ApiKeyService): void {
  const base = () => ctx.db.selectFrom('api_keys').innerJoin('users', 'users.id', 'api_keys.user_id').select(COLUMNS);

  route(app, {
    method: 'GET',
    url: '/api/v1/admin/api-keys',
    auth: 'admin',
    policy: 'admin:api-keys.list (every user; metadata only)',
    tags: ['api-keys'],
    summary: "Every user's API keys with their owner, oldest first (keyset pages)",
    query: z
      .object({
        user_id: z.string().trim().min(1).max(64).optional(),
        q: z.string().trim().max(200).optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: z.string().trim().max(200).optional(),
      })
      .strict(),
    handler: async (req) => {
      const { user_id, q: text, limit, cursor } = req.data.query;
      let q = base();
      if (user_id) q = q.where('api_keys.user_id', '=', user_id);
      if (text) {
        const p = likePattern(text);
        // ESCAPE makes `\` the escape character in both engines (SQLite has none by default).
        q = q.where((eb) =>
          eb.or([
            sql<boolean>`lower(api_keys.name) like ${p} escape '\\'`,
            sql<boolean>`lower(users.email) like ${p} escape '\\'`,
            sql<boolean>`lower(users.name) like ${p} escape '\\'`,
            eb('api_keys.id', '=', text.toLowerCase()),
          ]),
        );
      }
      if (cursor) q = q.where(afterKey('api_keys.created_at', 'api_keys.id', decodeCursor(cursor)));
      const rows = await q
        .orderBy('api_keys.created_at')
        .orderBy('api_keys.id')
        .limit(limit + 1)
        .execute();
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return { items: page.map(presentAdminKey), next_cursor: rows.length > limit && last ? encodeCursor(last) : null };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/users/:id/api-keys',
    auth: 'admin',
    policy: 'admin:users.api-keys (metadata only)',
    tags: ['api-keys'],
    summary: "One user's API keys, newest first",
    params: idParam,
    handler: async (req) => {
      const { id } = req.data.params;
      const user = await ctx.db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst();
      if (!user) throw notFound('User');
      const rows = await base()
        .where('api_keys.user_id', '=', id)
        .orderBy('api_keys.created_at', 'desc')
        .orderBy('api_keys.id')
        .execute();
      return { items: rows.map(presentAdminKey) };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/admin/api-keys/:id',
    auth: 'admin',
    policy: 'admin:api-keys.revoke (any user; audited with the owner)',
    tags: ['api-keys'],
    summary: "Revoke (delete) any user's key; it stops working at once on every instance",
    params: idParam,
    handler: async (req) => {
      const { id } = req.data.params;
      await ctx.db.transaction().execute(async (trx) => {
        const before = await trx
          .selectFrom('api_keys')
          .innerJoin('users', 'users.id', 'api_keys.user_id')
          .select(COLUMNS)
          .where('api_keys.id', '=', id)
          .executeTakeFirst();
        if (!before) throw notFound('API key');
        await trx.deleteFrom('api_keys').where('id', '=', before.id).execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'api_key.revoked',
          resourceType: 'api_key',
          resourceId: before.id,
          before: presentKey(before),
          result: 'success',
          details: { owner_id: before.user_id, via: 'admin' },
        });
      });
      // After the commit: the verify cache drops the key here and, through Redis, everywhere.
      await service.invalidate({ key: id });
      return { status: 'revoked' };
    },
  });
}
