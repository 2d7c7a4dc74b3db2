import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { z, type ZodType } from 'zod';
import { AppError } from './errors.js';

/**
 * Every route is declared through `route()`: its auth kind and its policy are part of the
 * declaration, enforced centrally, and a test walks every registered route to make sure none is
 * missing. Request parts are validated with zod; the JSON schema is used only for the OpenAPI doc.
 */
export type AuthKind = 'none' | 'session' | 'session-or-key' | 'admin';

export interface RouteConfig {
  auth: AuthKind;
  /** Name of the policy the handler enforces (documentation + route audit). */
  policy: string;
  /** Pending users may call this route (their own account, sign-out). */
  allowPending?: boolean;
  /** The route sets a session cookie (sign-in, sign-up): cross-origin calls are refused. */
  setsSession?: boolean;
  /**
   * GET only: with POLICY_NO_AUTH_DEFAULT=view_only, anonymous requests are answered (as the
   * primary admin, read-only). Off by default; see docs/security.md "Account security".
   */
  viewable?: boolean;
}

export interface RouteSpec<B, Q, P> extends RouteConfig {
  method: HTTPMethods | HTTPMethods[];
  url: string;
  summary?: string;
  tags?: string[];
  body?: ZodType<B>;
  query?: ZodType<Q>;
  params?: ZodType<P>;
  bodyLimit?: number;
  handler: (req: FastifyRequest & { data: { body: B; query: Q; params: P } }, reply: FastifyReply) => Promise<unknown>;
}

function zodIssueMessage(issues: z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`)
    .join('; ');
}

export function parsePart<T>(schema: ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return value as T;
  const r = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (!r.success)
    throw new AppError('validation_failed', `Invalid ${where}: ${zodIssueMessage(r.error.issues)}`, {
      where,
      issues: r.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
    });
  return r.data;
}

function jsonSchema(schema: ZodType | undefined): Record<string, unknown> | undefined {
  if (!schema) return undefined;
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export function route<B = unknown, Q = unknown, P = unknown>(app: FastifyInstance, spec: RouteSpec<B, Q, P>): void {
  const config: RouteConfig = {
    auth: spec.auth,
    policy: spec.policy,
    allowPending: spec.allowPending ?? false,
    setsSession: spec.setsSession ?? false,
    viewable: spec.viewable ?? false,
  };
  if (spec.viewable && [spec.method].flat().some((m) => m !== 'GET'))
    throw new Error(`Route ${spec.url}: only GET routes can be declared viewable`);
  // JSON schemas only feed the API document: not built when it is not served (ENV=prod).
  const documented = app.hasDecorator('swagger');
  app.route({
    method: spec.method,
    url: spec.url,
    bodyLimit: spec.bodyLimit,
    config,
    schema: Object.fromEntries(
      Object.entries({
        summary: spec.summary,
        tags: spec.tags,
        body: documented ? jsonSchema(spec.body) : undefined,
        querystring: documented ? jsonSchema(spec.query) : undefined,
        params: documented ? jsonSchema(spec.params) : undefined,
      }).filter(([, v]) => v !== undefined),
    ),
    handler: async (req, reply) => {
      const data = {
        params: parsePart(spec.params, req.params, 'path parameters'),
        query: parsePart(spec.query, req.query, 'query'),
        body: parsePart(spec.body, req.body, 'body'),
      };
      (req as FastifyRequest & { data: typeof data }).data = data;
      return spec.handler(req as FastifyRequest & { data: typeof data }, reply);
    },
  });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthKind;
    policy?: string;
    allowPending?: boolean;
    setsSession?: boolean;
    viewable?: boolean;
  }
}
