import type { FastifyRequest } from 'fastify';
import type { AppContext, AuthContext } from '../../context.js';
import { authFromRequest } from '../../platform/audit/index.js';
import { AppError } from '../../platform/http/errors.js';
import { attachAuthExtras } from '../access/actor.js';
import { normaliseRequestPath, pathAllowed } from './restrictions.js';
import { parseKey } from './format.js';
import { apiKeyService, failureAudit, isRepeatedFailure } from './service.js';

/**
 * Authenticates `Authorization: Bearer sk-…` (the only way a key is accepted: never in a cookie
 * or the query string). Applies, in order: the key itself (see ApiKeyService.verify), then the
 * server-wide endpoint allowlist (ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS + API_KEYS_ALLOWED_ENDPOINTS)
 * and the key's own `allowed_endpoints`, both against the normalised request path.
 */
export async function authenticateApiKey(ctx: AppContext, req: FastifyRequest, token: string): Promise<AuthContext> {
  let entry;
  try {
    entry = await apiKeyService(ctx).verify(token);
  } catch (e) {
    // Audited once per key (a key refused again from the negative cache is not), and coalesced
    // per address during a flood (see FailureAudit).
    if (e instanceof AppError && !isRepeatedFailure(e)) {
      const id = parseKey(token)?.id;
      failureAudit(ctx).report({
        action: 'auth.failure',
        result: 'failure',
        method: 'api_key',
        reason: id ? `${e.code} key=${id}` : e.code,
        ...authFromRequest(req),
      });
    }
    throw e;
  }
  const global = ctx.config.ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS ? ctx.config.API_KEYS_ALLOWED_ENDPOINTS : null;
  const own = entry.allowedEndpoints;
  if (global !== null || own !== null) {
    const path = normaliseRequestPath(req.url);
    const ok =
      path !== null && (global === null || pathAllowed(path, global)) && (own === null || pathAllowed(path, own));
    if (!ok) {
      failureAudit(ctx).report({
        action: 'auth.failure',
        result: 'failure',
        method: 'api_key',
        userId: entry.user.id,
        reason: `api_key_endpoint_forbidden key=${entry.keyId}`,
        ...authFromRequest(req),
      });
      throw new AppError('api_key_endpoint_forbidden', 'This API key may not call this endpoint');
    }
  }
  const auth: AuthContext = {
    kind: 'api-key',
    keyId: entry.keyId,
    user: entry.user,
    session: null,
    actorId: entry.user.id,
    viaCookie: false,
  };
  attachAuthExtras(auth, { allowedModels: entry.allowedModels, memberships: entry.memberships });
  return auth;
}
