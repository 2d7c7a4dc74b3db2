import type { FastifyRequest } from 'fastify';
import type { AppContext, AuthContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import { authFromRequest } from '../../platform/audit/index.js';
import { checkCsrf } from '../../platform/http/hardening.js';
import { checkImpersonator } from '../access/impersonation.js';
import { authenticateApiKey } from '../api-keys/authenticate.js';
import { checkTrustedHeaderMatch, trustedHeaderAuth } from '../sso/trusted-header.js';

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
 * the route's declared auth kind, the pending-account lockout, the CSRF origin check and the
 * account-security restrictions (forced password change, 2FA enrolment required).
 */
export async function authenticateRequest(ctx: AppContext, req: FastifyRequest): Promise<void> {
  const cfg = req.routeOptions.config;
  const kind = cfg.auth;
  if (kind === undefined) throw new AppError('not_found', 'Not found');
  if (kind === 'none') {
    checkCsrf(req, ctx.config, req.cookies?.[AUTH_COOKIE] !== undefined);
    return;
  }
  let cred: ReturnType<typeof readCredential>;
  try {
    cred = readCredential(req);
  } catch (e) {
    tokenFailure(ctx, req, e);
  }
  // An authenticating proxy's identity header (only from a FORWARDED_ALLOW_IPS peer; see sso/trusted-header).
  const proxied = await trustedHeaderAuth(ctx, req);
  if (!cred && !proxied) {
    // POLICY_NO_AUTH_DEFAULT: `deny` (default) → 401; `view_only` / `allow_all` admit the request
    // as the primary admin (view_only: GET on routes declared `viewable` only). See account-security.
    const anonymous = await ctx.accountSecurity.anonymousAuth(req);
    if (!anonymous) throw new AppError('unauthenticated', 'Sign in or send an API key');
    req.auth = anonymous;
    checkCsrf(req, ctx.config, true);
    return;
  }
  let auth: AuthContext;
  if (!cred) auth = proxied!;
  else if (cred.token.startsWith('sk-')) {
    // Keys only in the Authorization header: a key in a cookie would be sent cross-site.
    if (cred.viaCookie)
      tokenFailure(
        ctx,
        req,
        new AppError('api_key_invalid', 'API keys are accepted only as "Authorization: Bearer"'),
        'api_key',
      );
    // A new invalid key counts as a failed sign-in of the client address (login limiter).
    auth = await authenticateApiKey(ctx, req, cred.token).catch((e: unknown) =>
      ctx.accountSecurity.apiKeyFailed(req, e),
    );
  } else {
    const { session, user } = await ctx.sessions.check(cred.token).catch((e: unknown) => tokenFailure(ctx, req, e));
    if (session.actor_id !== null) await checkImpersonator(ctx, session.actor_id);
    auth = { kind: 'session', user, session, actorId: session.actor_id ?? user.id, viaCookie: cred.viaCookie };
  }
  if (proxied && cred) checkTrustedHeaderMatch(ctx, req, proxied, auth);
  req.auth = auth;
  if (kind === 'session' && auth.kind === 'api-key')
    throw new AppError('session_required', 'This endpoint needs a signed-in session; API keys are not accepted here');
  checkCsrf(req, ctx.config, auth.viaCookie);
  if (auth.user.role === 'pending' && !cfg.allowPending)
    throw new AppError('account_pending', 'Your account is pending approval by an administrator');
  if (kind === 'admin' && auth.user.role !== 'admin')
    throw new AppError('admin_required', 'This action requires an administrator');
  // Forced password change, ENFORCE_2FA: such a session reaches only the routes that resolve it.
  // (Only sessions can carry restrictions; API keys and anonymous access never do.)
  if (auth.kind === 'session') await ctx.accountSecurity.enforce(req, auth);
}

/** A failed authentication is always audited (method `token` unless given; reason = error code), then rethrown. */
function tokenFailure(ctx: AppContext, req: FastifyRequest, e: unknown, method = 'token'): never {
  if (e instanceof AppError)
    ctx.audit.auth({
      action: 'auth.failure',
      result: 'failure',
      method,
      reason: e.code,
      ...authFromRequest(req),
    });
  throw e;
}
