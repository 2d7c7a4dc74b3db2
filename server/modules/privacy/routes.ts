import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { AppError } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { verifyPassword } from '../../platform/security/passwords.js';
import { clearSessionCookie } from '../auth/routes.js';
import { anonymiseOrphanUsage, cancelLateSweeps, eraseUser } from './erasure.js';
import { exportUser } from './export.js';
import { processFileDeletions } from './file-journal.js';

/** Export and erasure are for the account holder: never through an admin's impersonation session. */
function requireHolder(req: FastifyRequest): void {
  const auth = req.auth!;
  if (auth.actorId !== auth.user.id)
    throw new AppError('forbidden', 'Exporting or deleting an account is not possible while impersonating it');
}

export function registerPrivacyRoutes(app: FastifyInstance, ctx: AppContext) {
  // Files of erasures that committed before a crash are removed before the server serves, and
  // usage rows that requests of erased users wrote after the erasure are anonymised.
  app.addHook('onReady', async () => {
    try {
      const r = await processFileDeletions(ctx);
      if (r.removed || r.failed) ctx.log.info(r, 'Processed pending file deletions');
      const since = Date.now() - 2 * (ctx.config.GATEWAY_REQUEST_TIMEOUT + 3600) * 1000;
      const n = await anonymiseOrphanUsage(ctx.db, since);
      if (n) ctx.log.info({ rows: n }, 'Anonymised usage rows of erased users');
    } catch (e) {
      ctx.log.error({ err: (e as Error).message }, 'Could not finish pending erasure work');
    }
  });
  app.addHook('onClose', async () => cancelLateSweeps(ctx.db));

  route(app, {
    method: 'GET',
    url: '/api/v1/users/me/export',
    auth: 'session',
    allowPending: true,
    policy: 'self:privacy.export (the caller’s own data; not while impersonated; audited)',
    tags: ['privacy'],
    summary: 'Everything HridaAI holds about the caller, as one streamed JSON document.',
    handler: async (req, reply) => {
      requireHolder(req);
      const userId = req.auth!.user.id;
      await ctx.audit.record(ctx.db, {
        ...fromRequest(req),
        action: 'privacy.export',
        resourceType: 'user',
        resourceId: userId,
      });
      const stream = Readable.from(exportUser(ctx, userId));
      stream.on('error', (e) => req.log.error({ err: e.message }, 'Personal data export failed while streaming'));
      reply
        .header('content-type', 'application/json; charset=utf-8')
        .header('content-disposition', 'attachment; filename="hridaai-export.json"')
        .header('cache-control', 'no-store');
      return reply.send(stream);
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/users/me',
    auth: 'session',
    allowPending: true,
    policy: 'self:privacy.erase (password re-check; last-admin rule; not while impersonated; audited)',
    tags: ['privacy'],
    summary:
      'Erases the caller’s account and everything that belongs to it. Accounts with a password must send it again.',
    body: z
      .object({ password: z.string().max(1024).optional() })
      .strict()
      .default({}),
    handler: async (req, reply) => {
      requireHolder(req);
      const user = req.auth!.user;
      if (user.password_hash) {
        const pw = req.data.body.password;
        if (!pw || !(await verifyPassword(pw, user.password_hash)))
          throw new AppError('reauthentication_failed', 'Send your current password to delete your account');
      }
      const m = fromRequest(req);
      await eraseUser(ctx, user.id, {
        actorId: m.actorId,
        subjectId: m.subjectId,
        ip: m.ip,
        requestId: m.requestId,
        via: 'self',
      });
      clearSessionCookie(ctx, reply);
      return { status: 'deleted' };
    },
  });
}
