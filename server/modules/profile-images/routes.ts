import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { DEFAULT_PROFILE_IMAGE } from './default-image.js';
import { setProfileImage, validateProfileImage } from './validate.js';

function sendImage(reply: FastifyReply, contentType: string, bytes: Buffer) {
  return reply
    .header('content-type', contentType)
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'; sandbox")
    .header('cross-origin-resource-policy', 'same-origin')
    .header('cache-control', 'private, max-age=300')
    .send(bytes);
}

export function registerProfileImageRoutes(app: FastifyInstance, ctx: AppContext) {
  route(app, {
    method: 'POST',
    url: '/api/v1/users/me/profile-image',
    auth: 'session',
    policy: 'self:profile-image.set (the caller only)',
    tags: ['users'],
    summary: 'Set (data URI or http(s) URL) or clear (null) the caller’s profile image',
    bodyLimit: 2 * 1024 * 1024,
    body: z.object({ image: z.string().max(1_500_000).nullable() }).strict(),
    handler: async (req) => {
      const userId = req.auth!.user.id;
      const img = await ctx.db.transaction().execute(async (trx) => {
        const result = await setProfileImage(trx, ctx.config, userId, req.data.body.image);
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'user.profile_image_set',
          resourceType: 'user',
          resourceId: userId,
          after: {
            kind: result.kind,
            ...(result.kind === 'data' ? { content_type: result.contentType, size: result.bytes.length } : {}),
          },
        });
        return result;
      });
      await ctx.sessions.afterUserChange(userId);
      return { status: 'ok', kind: img.kind, url: `/api/v1/users/${userId}/profile-image` };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/users/:id/profile-image',
    auth: 'session-or-key',
    policy: 'authenticated:profile-image.read (any active user; avatars are shown to colleagues)',
    tags: ['users'],
    params: z.object({ id: z.string().min(1).max(64) }),
    handler: async (req, reply) => {
      const { id } = req.data.params;
      const user = await ctx.db
        .selectFrom('users')
        .select(['id', 'profile_image_url'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!user) throw notFound('User');
      const stored = await ctx.db.selectFrom('profile_images').selectAll().where('user_id', '=', id).executeTakeFirst();
      if (stored) {
        // Re-checked on the way out too: only allowlisted types whose bytes match are ever served.
        try {
          const img = validateProfileImage(ctx.config, `data:${stored.content_type};base64,${stored.data}`);
          if (img.kind === 'data') return sendImage(reply, img.contentType, img.bytes);
        } catch {
          return sendImage(reply, 'image/png', DEFAULT_PROFILE_IMAGE);
        }
      }
      let img;
      try {
        img = validateProfileImage(ctx.config, user.profile_image_url);
      } catch {
        return sendImage(reply, 'image/png', DEFAULT_PROFILE_IMAGE);
      }
      if (img.kind === 'data') return sendImage(reply, img.contentType, img.bytes);
      if (img.kind === 'path')
        return reply.code(302).header('location', img.path).header('referrer-policy', 'no-referrer').send();
      if (img.kind === 'url' && ctx.config.ENABLE_PROFILE_IMAGE_URL_FORWARDING)
        return reply
          .code(302)
          .header('location', img.url)
          .header('referrer-policy', 'no-referrer')
          .header('cache-control', 'private, max-age=300')
          .send();
      return sendImage(reply, 'image/png', DEFAULT_PROFILE_IMAGE);
    },
  });
}
