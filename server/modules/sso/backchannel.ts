import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { authFromRequest } from '../../platform/audit/index.js';
import type { OAuthService } from './oauth.js';
import type { ProviderDef, ProviderId } from './providers.js';

/**
 * OpenID Connect Back-Channel Logout 1.0, RP side. A logout token is accepted only when:
 * - it is a JWS signed with an asymmetric algorithm the provider advertises, verified against the
 *   provider's JWKS (fetched through the outbound client); `none` and HMAC are refused;
 * - `typ`, when present, is `logout+jwt`;
 * - `iss` is the provider's issuer and `aud` contains HridaAI's client id;
 * - `iat` is present and recent (10 minutes), `exp` is present and not passed;
 * - `jti` is present and was never seen before (replay cache in the database, so it holds across
 *   instances and restarts);
 * - `events` holds the back-channel logout event (a JSON object);
 * - `nonce` is absent; `sub` or `sid` (or both) is present.
 * Then every HridaAI session of that provider session (`sid`), or of that provider subject (`sub`)
 * when there is no `sid`, is revoked in the database at once — with or without Redis.
 */
export const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const MAX_AGE_S = 600;

export class LogoutTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogoutTokenError';
  }
}

const jwksCache = new WeakMap<OAuthService, Map<ProviderId, { uri: string; get: JWTVerifyGetKey }>>();

function jwksFor(svc: OAuthService, p: ProviderDef, uri: string): JWTVerifyGetKey {
  let m = jwksCache.get(svc);
  if (!m) {
    m = new Map();
    jwksCache.set(svc, m);
  }
  const hit = m.get(p.id);
  if (hit && hit.uri === uri) return hit.get;
  const get = createRemoteJWKSet(new URL(uri), {
    [customFetch]: (url: string, init: RequestInit) =>
      svc.fetcher.fetch(url, {
        method: init.method,
        headers: init.headers as Record<string, string>,
        signal: init.signal ?? undefined,
      }),
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  });
  m.set(p.id, { uri, get });
  return get;
}

export async function verifyLogoutToken(
  svc: OAuthService,
  p: ProviderDef,
  token: string,
): Promise<{ sub: string | null; sid: string | null; jti: string; exp: number }> {
  const cfg = await svc.configuration(p);
  const meta = cfg.serverMetadata();
  if (!meta.jwks_uri) throw new LogoutTokenError('the provider publishes no JWKS');
  const advertised = meta.id_token_signing_alg_values_supported;
  const algorithms = Array.isArray(advertised) ? ASYMMETRIC.filter((a) => advertised.includes(a)) : ['RS256'];
  let payload;
  let header;
  try {
    ({ payload, protectedHeader: header } = await jwtVerify(token, jwksFor(svc, p, meta.jwks_uri), {
      issuer: meta.issuer,
      audience: p.clientId,
      algorithms,
      maxTokenAge: MAX_AGE_S,
      clockTolerance: 60,
      requiredClaims: ['iat', 'exp', 'jti', 'events'],
    }));
  } catch (e) {
    if (e instanceof joseErrors.JOSEError) throw new LogoutTokenError(`invalid logout token: ${e.code}`);
    throw new LogoutTokenError('invalid logout token');
  }
  if (header.typ !== undefined && !/^(application\/)?logout\+jwt$/i.test(header.typ))
    throw new LogoutTokenError('wrong token type');
  const events = payload.events as unknown;
  if (
    !events ||
    typeof events !== 'object' ||
    Array.isArray(events) ||
    !(LOGOUT_EVENT in events) ||
    typeof (events as Record<string, unknown>)[LOGOUT_EVENT] !== 'object' ||
    (events as Record<string, unknown>)[LOGOUT_EVENT] === null
  )
    throw new LogoutTokenError('missing back-channel logout event');
  if ('nonce' in payload) throw new LogoutTokenError('a logout token must not contain a nonce');
  const sub = typeof payload.sub === 'string' && payload.sub ? payload.sub : null;
  const sid = typeof payload.sid === 'string' && payload.sid ? payload.sid : null;
  if (!sub && !sid) throw new LogoutTokenError('neither sub nor sid');
  if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 255)
    throw new LogoutTokenError('invalid jti');
  return { sub, sid, jti: payload.jti, exp: payload.exp! };
}

/** Verifies, records the jti (replay refused) and revokes. Returns how many sessions ended. */
export async function backchannelLogout(
  ctx: AppContext,
  svc: OAuthService,
  p: ProviderDef,
  token: string,
  req: FastifyRequest,
): Promise<number> {
  const t = await verifyLogoutToken(svc, p, token);
  const now = Date.now();
  const { revoked, users } = await ctx.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('oidc_logout_jtis').where('expires_at', '<', now).execute();
    const ins = await trx
      .insertInto('oidc_logout_jtis')
      .values({ provider: p.id, jti: t.jti, expires_at: Math.max(t.exp * 1000, now) + MAX_AGE_S * 1000 })
      .onConflict((oc) => oc.columns(['provider', 'jti']).doNothing())
      .executeTakeFirst();
    if (Number(ins.numInsertedOrUpdatedRows ?? 0n) !== 1) throw new LogoutTokenError('logout token replayed');
    let q = trx
      .selectFrom('sso_sessions')
      .innerJoin('sessions', 'sessions.id', 'sso_sessions.session_id')
      .select(['sso_sessions.session_id', 'sso_sessions.user_id'])
      .where('sso_sessions.provider', '=', p.id)
      .where('sessions.revoked_at', 'is', null);
    if (t.sid) q = q.where('sso_sessions.idp_sid', '=', t.sid);
    if (t.sub) q = q.where('sso_sessions.subject', '=', t.sub);
    const rows = await q.execute();
    let n = 0;
    for (const r of rows) if (await ctx.sessions.revoke(r.session_id, 'backchannel_logout', { trx })) n++;
    const users = [...new Set(rows.map((r) => r.user_id))];
    for (const userId of users)
      await ctx.audit.recordAuth(trx, {
        action: 'auth.signout',
        result: 'success',
        method: 'oidc',
        userId,
        reason: 'backchannel_logout',
        ...authFromRequest(req),
      });
    return { revoked: n, users };
  });
  for (const u of users) await ctx.sessions.afterUserChange(u);
  return revoked;
}
