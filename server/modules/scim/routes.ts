import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { authFromRequest } from '../../platform/audit/index.js';
import { AppError } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { ipSubject } from '../account-security/limiter.js';
import { ScimTokens } from './auth.js';
import { invalidSyntax, ScimError, scimErrorBody } from './errors.js';
import {
  createGroup,
  deleteGroup,
  editableGroup,
  getGroup,
  GROUP_DEFS,
  groupInput,
  listGroups,
  updateGroup,
} from './groups.js';
import { applyPatch, parsePatchBody } from './patch.js';
import { canonicalBody, checkIfMatch, listResponse, paging, project, type Resource } from './resources.js';
import {
  ENTERPRISE_USER_SCHEMA,
  GROUP_ATTRS,
  GROUP_SCHEMA,
  schemaResource,
  USER_ATTRS,
  USER_SCHEMA,
} from './schema.js';
import {
  createUser,
  deleteUser,
  editableUser,
  getUser,
  listUsers,
  loadUser,
  updateUser,
  USER_DEFS,
  userInput,
} from './users.js';

/**
 * SCIM 2.0 service provider at /api/v1/scim/v2 (RFC 7643/7644), for Okta, Entra ID and others.
 * Authenticated by the SCIM bearer token only (SCIM_TOKEN / SCIM_TOKEN_FILE, constant-time); a
 * session or API key is not accepted here. Errors use the SCIM error schema. Disabled (404) unless
 * ENABLE_SCIM=true.
 */
export const SCIM_PREFIX = '/api/v1/scim/v2';
const SCIM_JSON = 'application/scim+json; charset=utf-8';

const idParam = z.object({ id: z.string().min(1).max(64) });
const listQuery = z
  .object({
    filter: z.string().max(4096).optional(),
    startIndex: z.string().max(12).optional(),
    count: z.string().max(12).optional(),
    attributes: z.string().max(2000).optional(),
    excludedAttributes: z.string().max(2000).optional(),
  })
  .passthrough();
const getQuery = z
  .object({ attributes: z.string().max(2000).optional(), excludedAttributes: z.string().max(2000).optional() })
  .passthrough();

function baseUrl(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}${SCIM_PREFIX}`;
}

function mapError(err: FastifyError | AppError | ScimError | Error): { status: number; body: object } {
  if (err instanceof ScimError)
    return { status: err.status, body: scimErrorBody(err.status, err.message, err.scimType) };
  if (err instanceof AppError) {
    const scimType = err.code === 'validation_failed' ? 'invalidValue' : err.status === 409 ? 'uniqueness' : undefined;
    return { status: err.status, body: scimErrorBody(err.status, err.message, scimType) };
  }
  const fe = err as FastifyError;
  if (
    fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
    err instanceof SyntaxError ||
    fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
  )
    return { status: 400, body: scimErrorBody(400, 'The request body is not valid JSON', 'invalidSyntax') };
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return { status: 413, body: scimErrorBody(413, 'The request body is too large') };
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return { status: 415, body: scimErrorBody(415, 'Send application/scim+json or application/json') };
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
    return { status: fe.statusCode, body: scimErrorBody(fe.statusCode, 'Invalid request') };
  return { status: 500, body: scimErrorBody(500, 'Internal error') };
}

export function registerScimRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { config } = ctx;
  const tokens = config.ENABLE_SCIM ? new ScimTokens(config, ctx.log) : null;

  app.register(
    async (scope) => {
      scope.addContentTypeParser('application/scim+json', { parseAs: 'string' }, (_req, body, done) => {
        try {
          done(null, (body as string).length ? JSON.parse(body as string) : undefined);
        } catch {
          done(invalidSyntax('The request body is not valid JSON'), undefined);
        }
      });

      scope.setErrorHandler((err: FastifyError | AppError | ScimError | Error, req, reply) => {
        const { status, body } = mapError(err);
        if (status >= 500) req.log.error({ err }, 'SCIM request failed');
        if (status === 401) reply.header('www-authenticate', 'Bearer realm="scim"');
        return reply.code(status).header('content-type', SCIM_JSON).send(body);
      });

      // The SCIM token, checked before the body is read. Valid tokens are never slowed down;
      // invalid ones count as failures of the client address on the login limiter.
      scope.addHook('onRequest', async (req) => {
        if (!tokens) throw new ScimError(404, 'SCIM provisioning is not enabled (ENABLE_SCIM)');
        const h = req.headers.authorization;
        const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
        if (m && m[1]!.length <= 4096 && tokens.verify(m[1]!)) return;
        const limiter = ctx.accountSecurity.limiter;
        const check = await limiter.check([ipSubject(req.ip)]);
        ctx.audit.auth({
          action: 'auth.failure',
          result: 'failure',
          method: 'scim',
          reason: !check.allowed ? 'login_locked' : m ? 'scim_token_invalid' : 'scim_token_missing',
          ...authFromRequest(req),
        });
        if (!check.allowed) throw new ScimError(429, 'Too many failed attempts; try again later');
        const r = await limiter.fail([ipSubject(req.ip)]);
        ctx.accountSecurity.auditLockouts(req, r, 'scim');
        throw new ScimError(401, m ? 'Invalid SCIM token' : 'Send the SCIM token as "Authorization: Bearer <token>"');
      });

      scope.addHook('onSend', async (_req, reply, payload) => {
        const ct = String(reply.getHeader('content-type') ?? '');
        if (ct.startsWith('application/json')) reply.header('content-type', SCIM_JSON);
        return payload;
      });

      const send = (reply: FastifyReply, res: Resource, status = 200) => {
        const meta = res.meta as { version?: string } | undefined;
        if (meta?.version) reply.header('etag', meta.version);
        reply.code(status);
        return res;
      };
      const ifMatch = (req: FastifyRequest) => (etag: string) => checkIfMatch(req.headers['if-match'], etag);
      const policy = 'scim:token (SCIM_TOKEN, constant-time)';

      // ---- discovery
      route(scope, {
        method: 'GET',
        url: '/ServiceProviderConfig',
        auth: 'none',
        policy,
        tags: ['scim'],
        handler: async (req) => ({
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
          documentationUri: 'https://hridaai.invalid/docs/api#scim',
          patch: { supported: true },
          bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
          filter: { supported: true, maxResults: 200 },
          changePassword: { supported: false },
          sort: { supported: false },
          etag: { supported: true },
          authenticationSchemes: [
            {
              type: 'oauthbearertoken',
              name: 'OAuth Bearer Token',
              description: 'The static SCIM token (SCIM_TOKEN) as "Authorization: Bearer <token>"',
              primary: true,
            },
          ],
          meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl(req)}/ServiceProviderConfig` },
        }),
      });

      const resourceTypes = (req: FastifyRequest) => [
        {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
          id: 'User',
          name: 'User',
          endpoint: '/Users',
          description: 'HridaAI accounts',
          schema: USER_SCHEMA,
          schemaExtensions: [{ schema: ENTERPRISE_USER_SCHEMA, required: false }],
          meta: { resourceType: 'ResourceType', location: `${baseUrl(req)}/ResourceTypes/User` },
        },
        {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
          id: 'Group',
          name: 'Group',
          endpoint: '/Groups',
          description: 'HridaAI groups managed by SCIM',
          schema: GROUP_SCHEMA,
          meta: { resourceType: 'ResourceType', location: `${baseUrl(req)}/ResourceTypes/Group` },
        },
      ];
      const schemas = (req: FastifyRequest) => [
        schemaResource(USER_SCHEMA, 'User', 'User account', USER_ATTRS, baseUrl(req)),
        schemaResource(GROUP_SCHEMA, 'Group', 'Group', GROUP_ATTRS, baseUrl(req)),
        schemaResource(ENTERPRISE_USER_SCHEMA, 'EnterpriseUser', 'Accepted and ignored (not stored)', [], baseUrl(req)),
      ];
      const all = <T>(items: T[]) => ({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
        totalResults: items.length,
        startIndex: 1,
        itemsPerPage: items.length,
        Resources: items,
      });
      route(scope, {
        method: 'GET',
        url: '/ResourceTypes',
        auth: 'none',
        policy,
        tags: ['scim'],
        handler: async (req) => all(resourceTypes(req)),
      });
      route(scope, {
        method: 'GET',
        url: '/ResourceTypes/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        handler: async (req) => {
          const r = resourceTypes(req).find((t) => t.id === req.data.params.id);
          if (!r) throw new ScimError(404, 'ResourceType not found');
          return r;
        },
      });
      route(scope, {
        method: 'GET',
        url: '/Schemas',
        auth: 'none',
        policy,
        tags: ['scim'],
        handler: async (req) => all(schemas(req)),
      });
      route(scope, {
        method: 'GET',
        url: '/Schemas/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: z.object({ id: z.string().min(1).max(200) }),
        handler: async (req) => {
          const r = schemas(req).find((s) => s.id === req.data.params.id);
          if (!r) throw new ScimError(404, 'Schema not found');
          return r;
        },
      });

      // ---- Users
      route(scope, {
        method: 'GET',
        url: '/Users',
        auth: 'none',
        policy,
        tags: ['scim'],
        query: listQuery,
        handler: async (req) => {
          const q = req.data.query;
          const p = paging(q);
          const { total, items } = await listUsers(ctx.db, q.filter, p, baseUrl(req));
          return listResponse(
            total,
            p,
            items.map((r) => project(r, q.attributes, q.excludedAttributes)),
          );
        },
      });
      route(scope, {
        method: 'GET',
        url: '/Users/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        query: getQuery,
        handler: async (req, reply) => {
          const r = await getUser(ctx.db, req.data.params.id, baseUrl(req));
          send(reply, r);
          return project(r, req.data.query.attributes, req.data.query.excludedAttributes);
        },
      });
      route(scope, {
        method: 'POST',
        url: '/Users',
        auth: 'none',
        policy,
        tags: ['scim'],
        handler: async (req, reply) => {
          const u = userInput(canonicalBody(req.body, USER_DEFS, USER_SCHEMA));
          const id = await createUser(ctx, req, u);
          const r = await getUser(ctx.db, id, baseUrl(req));
          reply.header('location', `${baseUrl(req)}/Users/${id}`);
          return send(reply, r, 201);
        },
      });
      route(scope, {
        method: 'PUT',
        url: '/Users/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        handler: async (req, reply) => {
          const u = userInput(canonicalBody(req.body, USER_DEFS, USER_SCHEMA));
          await updateUser(ctx, req, req.data.params.id, u, ifMatch(req));
          return send(reply, await getUser(ctx.db, req.data.params.id, baseUrl(req)));
        },
      });
      route(scope, {
        method: 'PATCH',
        url: '/Users/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        handler: async (req, reply) => {
          const ops = parsePatchBody(req.body);
          const before = await loadUser(ctx.db, req.data.params.id);
          const after = applyPatch(editableUser(before), ops, USER_DEFS);
          await updateUser(ctx, req, before.id, userInput(after), ifMatch(req));
          return send(reply, await getUser(ctx.db, before.id, baseUrl(req)));
        },
      });
      route(scope, {
        method: 'DELETE',
        url: '/Users/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        handler: async (req, reply) => {
          await deleteUser(ctx, req, req.data.params.id, ifMatch(req));
          return reply.code(204).send();
        },
      });

      // ---- Groups
      route(scope, {
        method: 'GET',
        url: '/Groups',
        auth: 'none',
        policy,
        tags: ['scim'],
        query: listQuery,
        handler: async (req) => {
          const q = req.data.query;
          const p = paging(q);
          const withMembers = !(q.excludedAttributes ?? '').split(',').some(
            (a) =>
              a
                .trim()
                .toLowerCase()
                .replace(/^urn:.*:group:/, '') === 'members',
          );
          const { total, items } = await listGroups(ctx.db, q.filter, p, baseUrl(req), withMembers);
          return listResponse(
            total,
            p,
            items.map((r) => project(r, q.attributes, q.excludedAttributes)),
          );
        },
      });
      route(scope, {
        method: 'GET',
        url: '/Groups/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        query: getQuery,
        handler: async (req, reply) => {
          const r = await getGroup(ctx.db, req.data.params.id, baseUrl(req));
          send(reply, r);
          return project(r, req.data.query.attributes, req.data.query.excludedAttributes);
        },
      });
      route(scope, {
        method: 'POST',
        url: '/Groups',
        auth: 'none',
        policy,
        tags: ['scim'],
        handler: async (req, reply) => {
          const g = groupInput(canonicalBody(req.body, GROUP_DEFS, GROUP_SCHEMA));
          const id = await createGroup(ctx, req, g);
          reply.header('location', `${baseUrl(req)}/Groups/${id}`);
          return send(reply, await getGroup(ctx.db, id, baseUrl(req)), 201);
        },
      });
      route(scope, {
        method: 'PUT',
        url: '/Groups/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        handler: async (req, reply) => {
          const g = groupInput(canonicalBody(req.body, GROUP_DEFS, GROUP_SCHEMA));
          await updateGroup(ctx, req, req.data.params.id, g, ifMatch(req));
          return send(reply, await getGroup(ctx.db, req.data.params.id, baseUrl(req)));
        },
      });
      route(scope, {
        method: 'PATCH',
        url: '/Groups/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        handler: async (req, reply) => {
          const ops = parsePatchBody(req.body);
          const id = req.data.params.id;
          const before = await getGroup(ctx.db, id, baseUrl(req));
          const after = applyPatch(editableGroup(before), ops, GROUP_DEFS);
          await updateGroup(ctx, req, id, groupInput(after), ifMatch(req));
          return send(reply, await getGroup(ctx.db, id, baseUrl(req)));
        },
      });
      route(scope, {
        method: 'DELETE',
        url: '/Groups/:id',
        auth: 'none',
        policy,
        tags: ['scim'],
        params: idParam,
        handler: async (req, reply) => {
          await deleteGroup(ctx, req, req.data.params.id, ifMatch(req));
          return reply.code(204).send();
        },
      });
    },
    { prefix: SCIM_PREFIX },
  );
}
