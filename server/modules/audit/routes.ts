import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { sql, type SelectQueryBuilder } from 'kysely';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import type { Database } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { presentAuditEvent, type AuditRow } from './presenter.js';

/** A time bound: milliseconds since the epoch or an ISO 8601 date/time. */
const instant = z
  .string()
  .trim()
  .max(40)
  .transform((v, ctx) => {
    const n = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(n)) {
      ctx.addIssue({ code: 'custom', message: 'must be milliseconds since the epoch or an ISO 8601 date' });
      return z.NEVER;
    }
    return n;
  });

const filters = {
  from: instant.optional(),
  to: instant.optional(),
  actor: z.string().trim().min(1).max(64).optional(),
  subject: z.string().trim().min(1).max(64).optional(),
  action: z
    .string()
    .trim()
    .min(1)
    .max(128)
    .regex(/^[a-z0-9_.-]+\*?$/i, 'letters, digits, _ . - and an optional trailing *')
    .optional(),
  resource_type: z.string().trim().min(1).max(64).optional(),
  resource_id: z.string().trim().min(1).max(256).optional(),
  result: z.enum(['success', 'failure']).optional(),
};
type Filters = { [K in keyof typeof filters]?: z.output<(typeof filters)[K]> };

const listQuery = z
  .object({
    ...filters,
    cursor: z.string().trim().max(64).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .strict();

const exportQuery = z.object({ ...filters }).strict();

/** Cursors are opaque to clients: base64url of "seq:<n>". */
export function encodeCursor(seq: number): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

export function decodeCursor(c: string): number {
  const m = /^seq:(\d{1,15})$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  if (!m) throw new AppError('validation_failed', 'Invalid query: cursor is not a cursor from this API');
  return Number(m[1]);
}

type Q = SelectQueryBuilder<Database, 'audit_events' | 'users', object>;

function applyFilters(q: Q, f: Filters): Q {
  if (f.from !== undefined) q = q.where('audit_events.created_at', '>=', f.from);
  if (f.to !== undefined) q = q.where('audit_events.created_at', '<', f.to);
  if (f.actor) q = q.where('audit_events.actor_id', '=', f.actor);
  if (f.subject) q = q.where('audit_events.subject_id', '=', f.subject);
  if (f.action) {
    if (f.action.endsWith('*')) {
      const prefix = f.action.slice(0, -1);
      q = q.where(sql<string>`substr(${sql.ref('audit_events.action')}, 1, ${prefix.length})`, '=', prefix);
    } else q = q.where('audit_events.action', '=', f.action);
  }
  if (f.resource_type) q = q.where('audit_events.resource_type', '=', f.resource_type);
  if (f.resource_id) q = q.where('audit_events.resource_id', '=', f.resource_id);
  if (f.result) q = q.where('audit_events.result', '=', f.result);
  return q;
}

/**
 * The admin viewer of the audit trail. Read-only by design: there is no route that edits or
 * deletes an entry (a test walks the routes), and the database refuses it too.
 */
export function registerAuditRoutes(app: FastifyInstance, ctx: AppContext) {
  const base = (): Q =>
    ctx.db
      .selectFrom('audit_events')
      .leftJoin('users', 'users.id', 'audit_events.actor_id')
      .selectAll('audit_events')
      .select('users.email as actor_email') as unknown as Q;

  route(app, {
    method: 'GET',
    url: '/api/v1/audit',
    auth: 'admin',
    policy: 'admin:audit.read',
    tags: ['audit'],
    summary: 'Audit trail, newest first: time range, actor, action (prefix with *), resource and result filters',
    query: listQuery,
    handler: async (req) => {
      const { cursor, limit, ...f } = req.data.query;
      let q = applyFilters(base(), f);
      if (cursor) q = q.where('audit_events.seq', '<', decodeCursor(cursor));
      const rows = (await q
        .orderBy('audit_events.seq', 'desc')
        .limit(limit + 1)
        .execute()) as unknown as AuditRow[];
      const more = rows.length > limit;
      const items = rows.slice(0, limit).map(presentAuditEvent);
      return { items, next_cursor: more ? encodeCursor(items[items.length - 1]!.seq) : null };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/audit/export',
    auth: 'admin',
    policy: 'admin:audit.export',
    tags: ['audit'],
    summary: 'Export the matching entries as JSON Lines, oldest first (each line carries its hash)',
    query: exportQuery,
    handler: async (req, reply) => {
      const f = req.data.query;
      await ctx.audit.record(ctx.db, {
        ...fromRequest(req),
        action: 'audit.exported',
        resourceType: 'audit',
        details: { filters: f },
      });
      async function* lines(): AsyncGenerator<string> {
        let after = 0;
        for (;;) {
          const rows = (await applyFilters(base(), f)
            .where('audit_events.seq', '>', after)
            .orderBy('audit_events.seq')
            .limit(1000)
            .execute()) as unknown as AuditRow[];
          if (!rows.length) return;
          yield rows.map((r) => JSON.stringify(presentAuditEvent(r)) + '\n').join('');
          after = Number(rows[rows.length - 1]!.seq);
          if (rows.length < 1000) return;
        }
      }
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      reply
        .header('content-type', 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="hridaai-audit-${stamp}.jsonl"`)
        .header('cache-control', 'no-store');
      return Readable.from(lines());
    },
  });
}
