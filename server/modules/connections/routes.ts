import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { createSafeFetch, UrlBlockedError } from '../../platform/net/index.js';
import { attachGateway } from '../gateway/services.js';
import { assertDirectAllowed, clientModelId, directModelId } from '../models/catalog.js';
import { createConnectionBody, updateConnectionBody, type ConnectionRow } from './service.js';
import { UpstreamError } from './transport.js';

const idParam = z.object({ id: z.string().min(1).max(64) });

/**
 * Connections: `/api/v1/connections` for admins (used by everyone, subject to model grants) and
 * `/api/v1/user/connections` for a user's own direct connections (ENABLE_DIRECT_CONNECTIONS).
 * The owner is part of every WHERE: an admin route never sees a user's connection and a user
 * never sees anyone else's (another id is 404). Changes are audited in the same transaction, with
 * the secrets masked.
 */
export function registerConnectionRoutes(app: FastifyInstance, ctx: AppContext) {
  const svc = attachGateway(app, ctx);

  const requireDirect = () => assertDirectAllowed(ctx.config);

  /** A user's connection URL must pass every safe-fetch rule before it is stored. */
  async function checkDirectUrl(url: string) {
    const sf = createSafeFetch(ctx.config, { purpose: 'model' });
    try {
      await sf.check(url);
    } catch (e) {
      if (e instanceof UrlBlockedError)
        throw new AppError('validation_failed', `base_url is not allowed: ${e.message}`, { rule: e.rule });
      throw new AppError('validation_failed', 'base_url cannot be checked');
    } finally {
      await sf.close();
    }
  }

  async function testConnection(row: ConnectionRow) {
    const conn = svc.store.open(row);
    const t0 = performance.now();
    try {
      const ids = await svc.discovery.fetchIds(conn);
      return { ok: true, models: ids.length, latency_ms: Math.round(performance.now() - t0) };
    } catch (e) {
      return {
        ok: false,
        error: e instanceof UpstreamError ? e.message : 'The model server could not be reached',
        latency_ms: Math.round(performance.now() - t0),
      };
    }
  }

  async function modelsOf(row: ConnectionRow, refresh: boolean) {
    const conn = svc.store.open(row);
    const r = await svc.discovery.ids(conn, { refresh });
    return {
      items: r.ids.map((up) => ({
        id: row.owner_id ? directModelId(row.id, up) : clientModelId(conn, up),
        upstream_id: up,
      })),
      source: conn.modelIds.length ? 'model_ids' : 'discovery',
      fetched_at: r.fetchedAt,
      error: r.error,
    };
  }

  for (const scope of ['global', 'user'] as const) {
    const base = scope === 'global' ? '/api/v1/connections' : '/api/v1/user/connections';
    const auth = scope === 'global' ? ('admin' as const) : ('session' as const);
    const pol = (what: string) =>
      scope === 'global' ? `admin:connections.${what}` : `owner:direct-connections.${what} (owner_id in WHERE)`;
    const owner = (req: FastifyRequest) => (scope === 'global' ? null : req.auth!.user.id);
    const guard = scope === 'global' ? () => undefined : requireDirect;
    const load = async (req: FastifyRequest, id: string) => {
      const row = await svc.store.get(ctx.db, id, owner(req));
      if (!row) throw notFound('Connection');
      return row;
    };

    route(app, {
      method: 'GET',
      url: base,
      auth,
      policy: pol('list'),
      tags: ['connections'],
      handler: async (req) => {
        guard();
        const rows = await svc.store.list(ctx.db, owner(req));
        return { items: rows.map((r) => svc.store.present(r)) };
      },
    });

    route(app, {
      method: 'POST',
      url: base,
      auth,
      policy: pol('create'),
      tags: ['connections'],
      summary: 'Adds a connection (the API key and header values are encrypted and never returned)',
      body: createConnectionBody,
      handler: async (req, reply) => {
        guard();
        const body = req.data.body;
        if (scope === 'user') await checkDirectUrl(body.base_url);
        const row = await ctx.db.transaction().execute(async (trx) => {
          const r = await svc.store.create(trx, body, owner(req), req.auth!.actorId);
          await ctx.audit.record(trx, {
            action: scope === 'global' ? 'connection.created' : 'direct_connection.created',
            ...fromRequest(req),
            resourceType: 'model_connection',
            resourceId: r.id,
            after: svc.store.present(r),
          });
          return r;
        });
        await svc.changed(row.id);
        reply.code(201);
        return svc.store.present(row);
      },
    });

    route(app, {
      method: 'GET',
      url: `${base}/:id`,
      auth,
      policy: pol('read'),
      tags: ['connections'],
      params: idParam,
      handler: async (req) => {
        guard();
        return svc.store.present(await load(req, req.data.params.id));
      },
    });

    route(app, {
      method: 'PATCH',
      url: `${base}/:id`,
      auth,
      policy: pol('update'),
      tags: ['connections'],
      summary: 'Changes a connection. Sending the mask (********) back keeps a stored secret; null removes it.',
      params: idParam,
      body: updateConnectionBody,
      handler: async (req) => {
        guard();
        const body = req.data.body;
        if (scope === 'user' && body.base_url) await checkDirectUrl(body.base_url);
        const row = await ctx.db.transaction().execute(async (trx) => {
          const before = await svc.store.get(trx, req.data.params.id, owner(req));
          if (!before) throw notFound('Connection');
          const after = await svc.store.update(trx, before, body);
          await ctx.audit.record(trx, {
            action: scope === 'global' ? 'connection.updated' : 'direct_connection.updated',
            ...fromRequest(req),
            resourceType: 'model_connection',
            resourceId: before.id,
            before: svc.store.present(before),
            after: svc.store.present(after),
            details: {
              api_key_changed: body.api_key !== undefined && body.api_key !== '********',
              headers_changed: body.headers !== undefined,
            },
          });
          return after;
        });
        await svc.changed(row.id);
        return svc.store.present(row);
      },
    });

    route(app, {
      method: 'DELETE',
      url: `${base}/:id`,
      auth,
      policy: pol('delete'),
      tags: ['connections'],
      params: idParam,
      handler: async (req) => {
        guard();
        await ctx.db.transaction().execute(async (trx) => {
          const before = await svc.store.get(trx, req.data.params.id, owner(req));
          if (!before) throw notFound('Connection');
          let q = trx.deleteFrom('model_connections').where('id', '=', before.id);
          q = scope === 'global' ? q.where('owner_id', 'is', null) : q.where('owner_id', '=', owner(req));
          await q.execute();
          await ctx.audit.record(trx, {
            action: scope === 'global' ? 'connection.deleted' : 'direct_connection.deleted',
            ...fromRequest(req),
            resourceType: 'model_connection',
            resourceId: before.id,
            before: svc.store.present(before),
          });
        });
        await svc.changed(req.data.params.id);
        return { status: 'deleted' };
      },
    });

    route(app, {
      method: 'POST',
      url: `${base}/:id/test`,
      auth,
      policy: pol('test'),
      tags: ['connections'],
      summary: 'Asks the upstream for its model list now and reports whether it answered',
      params: idParam,
      handler: async (req) => {
        guard();
        return testConnection(await load(req, req.data.params.id));
      },
    });

    route(app, {
      method: 'GET',
      url: `${base}/:id/models`,
      auth,
      policy: pol('models'),
      tags: ['connections'],
      summary: 'The models this connection serves (cached discovery; refresh=true asks again)',
      params: idParam,
      query: z.object({ refresh: z.enum(['true', 'false']).optional() }),
      handler: async (req) => {
        guard();
        return modelsOf(await load(req, req.data.params.id), req.data.query.refresh === 'true');
      },
    });

    route(app, {
      method: 'POST',
      url: `${base}/:id/refresh`,
      auth,
      policy: pol('refresh'),
      tags: ['connections'],
      params: idParam,
      handler: async (req) => {
        guard();
        const out = await modelsOf(await load(req, req.data.params.id), true);
        await svc.catalog.invalidate();
        return out;
      },
    });
  }
}
