import type { FastifyRequest } from 'fastify';
import type { AppContext, AuthContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import { checkCsrf } from '../../platform/http/hardening.js';

export const AUTH_COOKIE = 'token';

/** The credential a request carries: `Authorization: Bearer` first, then the HttpOnly cookie. */
export function readCredential(req: FastifyRequest): { token: string; viaCookie: boolean } | null {
  const h = req.headers.authorization;
  if (typeof h === 'string' && h.length > 0) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) throw new AppError('token_invalid', 'Authorization header must be "Bearer <token>"');
    return { token: m[1]!, viaCookie: false };
  }
  const c = req.cookies?.[AUTH_COOKIE];
  if (c) return { token: c, viaCookie: true };
  return null;
}

/**
 * Runs for every route (onRequest, before the body is read): resolves the caller, then enforces
 * the route's declared auth kind, the pending-account lockout and the CSRF origin check.
 */
export async function authenticateRequest(ctx: AppContext, req: FastifyRequest): Promise<void> {
  const cfg = req.routeOptions.config;
  const kind = cfg.auth;
  if (kind === undefined) throw new AppError('not_found', 'Not found');
  if (kind === 'none') {
    checkCsrf(req, ctx.config, req.cookies?.[AUTH_COOKIE] !== undefined);
    return;
  }
  const cred = readCredential(req);
  if (!cred) throw new AppError('unauthenticated', 'Sign in or send an API key');
  let auth: AuthContext;
  if (cred.token.startsWith('sk-')) {
    throw new AppError('token_invalid', 'API keys are not enabled on this server');
  } else {
    const { session, user } = await ctx.sessions.check(cred.token);
    auth = { kind: 'session', user, session, actorId: session.actor_id ?? user.id, viaCookie: cred.viaCookie };
  }
  req.auth = auth;
  checkCsrf(req, ctx.config, auth.viaCookie);
  if (auth.user.role === 'pending' && !cfg.allowPending)
    throw new AppError('account_pending', 'Your account is pending approval by an administrator');
  if (kind === 'admin' && auth.user.role !== 'admin')
    throw new AppError('admin_required', 'This action requires an administrator');
}
