import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type * as Client from 'openid-client';

/** openid-client is loaded on the first sign-in with a provider (not by servers without SSO). */
let loaded: Promise<typeof Client> | null = null;
function openidClient(): Promise<typeof Client> {
  loaded ??= import('openid-client');
  return loaded;
}
import type { AppContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import { evaluateClaims, httpsPicture } from './claims.js';
import { createIdpFetch, IdpFetchError, type IdpFetch } from './outbound.js';
import { configuredProviders, type ProviderDef, type ProviderId } from './providers.js';

/**
 * The OAuth 2.0 / OpenID Connect client side: authorization code flow with PKCE (S256), `state`
 * and (OpenID Connect) `nonce`, all three kept **server-side** in `oauth_states` and bound to the
 * browser by a random, short-lived, HttpOnly, SameSite=Lax cookie scoped to `/oauth/` — Lax so that
 * the IdP's top-level redirect back carries it even when HRIDAAI_SESSION_COOKIE_SAME_SITE=strict;
 * the row is deleted when used, so a callback URL (code) can never be replayed.
 *
 * Validation is openid-client's: `iss` of the authorization response (RFC 9207, mix-up), state,
 * PKCE, the ID token's signature against the provider's JWKS (RS256 and other asymmetric algorithms
 * only — an HS256 token signed with the client secret is refused), iss, aud, exp/iat and nonce.
 */
export const STATE_COOKIE = 'oauth_state';
const STATE_TTL_MS = 10 * 60_000;
const CONFIG_TTL_MS = 60 * 60_000;
const MAX_PENDING_STATES = 50_000;

function sha256hex(v: string): string {
  return createHash('sha256').update(v).digest('hex');
}

function sameString(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

export interface ExternalClaims {
  subject: string;
  claims: Record<string, unknown>;
  idpSid: string | null;
}

export class OAuthService {
  readonly providers: ProviderDef[];
  readonly fetcher: IdpFetch;
  private configs = new Map<ProviderId, { cfg: Client.Configuration; at: number }>();
  private inflight = new Map<ProviderId, Promise<Client.Configuration>>();

  constructor(private readonly ctx: AppContext) {
    this.providers = configuredProviders(ctx.config);
    this.fetcher = createIdpFetch(ctx.config);
  }

  provider(id: string): ProviderDef | null {
    return this.providers.find((p) => p.id === id) ?? null;
  }

  /** Provider metadata: discovered (and cached for an hour) for OpenID Connect, fixed for GitHub. */
  async configuration(p: ProviderDef): Promise<Client.Configuration> {
    const hit = this.configs.get(p.id);
    if (hit && Date.now() - hit.at < CONFIG_TTL_MS) return hit.cfg;
    let pending = this.inflight.get(p.id);
    if (!pending) {
      pending = this.build(p).finally(() => this.inflight.delete(p.id));
      this.inflight.set(p.id, pending);
    }
    const cfg = await pending;
    this.configs.set(p.id, { cfg, at: Date.now() });
    return cfg;
  }

  /** Forget cached metadata (after a failure that may come from a key rotation at the provider). */
  forget(id: ProviderId): void {
    this.configs.delete(id);
  }

  private async build(p: ProviderDef): Promise<Client.Configuration> {
    const client = await openidClient();
    let meta: Client.ServerMetadata;
    if (p.kind === 'oauth2') {
      meta = {
        issuer: p.issuer,
        authorization_endpoint: p.endpoints!.authorization,
        token_endpoint: p.endpoints!.token,
      };
    } else {
      const issuer = p.issuer.replace(/\/+$/, '');
      const wellKnown = `${issuer}/.well-known/openid-configuration`;
      let res: Response;
      try {
        res = await this.fetcher.fetch(wellKnown, { headers: { accept: 'application/json' } });
      } catch (e) {
        throw new AppError('oauth_provider_unavailable', 'The identity provider could not be reached', {
          cause: (e as Error).message,
        });
      }
      if (res.status !== 200)
        throw new AppError('oauth_provider_unavailable', 'The identity provider discovery document is unavailable', {
          status: res.status,
        });
      try {
        meta = (await res.json()) as Client.ServerMetadata;
      } catch {
        throw new AppError('oauth_provider_unavailable', 'The identity provider discovery document is not JSON');
      }
      // The document must name exactly the issuer it was fetched for (OpenID Connect Discovery §4.3).
      if (typeof meta.issuer !== 'string' || meta.issuer.replace(/\/+$/, '') !== issuer)
        throw new AppError('oauth_provider_unavailable', 'The discovery document names another issuer', {
          expected: p.issuer,
          got: String(meta.issuer).slice(0, 200),
        });
    }
    const secret = p.clientSecret ?? undefined;
    const auth = !secret
      ? client.None()
      : p.authMethod === 'client_secret_post'
        ? client.ClientSecretPost(secret)
        : client.ClientSecretBasic(secret);
    const cfg = new client.Configuration(meta, p.clientId, { ...(secret ? { client_secret: secret } : {}) }, auth);
    cfg[client.customFetch] = (url, options) => this.fetcher.fetch(url, options);
    cfg.timeout = 10;
    // Plain http is accepted by the settings only for a loopback issuer.
    if (new URL(meta.issuer).protocol === 'http:') client.allowInsecureRequests(cfg);
    if (p.kind === 'oidc') client.enableNonRepudiationChecks(cfg);
    return cfg;
  }

  redirectUri(p: ProviderDef, req: FastifyRequest): string {
    return p.redirectUri ?? `${req.protocol}://${req.host}/oauth/${p.id}/callback`;
  }

  /** Starts a sign-in: stores state/nonce/verifier, sets the binding cookie, returns the IdP URL. */
  async begin(p: ProviderDef, req: FastifyRequest, reply: FastifyReply): Promise<URL> {
    const client = await openidClient();
    const cfg = await this.configuration(p);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = p.kind === 'oidc' ? client.randomNonce() : null;
    const redirectUri = this.redirectUri(p, req);
    const params: Record<string, string> = {
      redirect_uri: redirectUri,
      scope: p.scope,
      state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    };
    if (nonce) params.nonce = nonce;
    const url = client.buildAuthorizationUrl(cfg, params);
    const binding = randomBytes(32).toString('base64url');
    const now = Date.now();
    await this.ctx.db.deleteFrom('oauth_states').where('expires_at', '<', now).execute();
    // Unauthenticated requests create these rows: bound their number (a flood cannot fill the disk).
    const pending = await this.ctx.db
      .selectFrom('oauth_states')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(pending.n) >= MAX_PENDING_STATES)
      throw new AppError('rate_limited', 'Too many sign-ins in progress; try again in a few minutes');
    await this.ctx.db
      .insertInto('oauth_states')
      .values({
        id: sha256hex(binding),
        provider: p.id,
        state,
        nonce,
        code_verifier: verifier,
        redirect_uri: redirectUri,
        created_at: now,
        expires_at: now + STATE_TTL_MS,
      })
      .execute();
    reply.setCookie(STATE_COOKIE, binding, {
      httpOnly: true,
      secure: this.ctx.config.authCookie.secure,
      sameSite: 'lax',
      path: '/oauth/',
      maxAge: STATE_TTL_MS / 1000,
    });
    return url;
  }

  clearStateCookie(reply: FastifyReply): void {
    reply.clearCookie(STATE_COOKIE, {
      httpOnly: true,
      secure: this.ctx.config.authCookie.secure,
      sameSite: 'lax',
      path: '/oauth/',
    });
  }

  /**
   * Completes a sign-in at the callback: consumes the server-side state (one use), validates the
   * response and the tokens, and returns the claims (ID token merged with userinfo).
   */
  async complete(p: ProviderDef, req: FastifyRequest): Promise<ExternalClaims> {
    const client = await openidClient();
    const binding = req.cookies?.[STATE_COOKIE];
    if (!binding || binding.length > 200)
      throw new AppError('oauth_state_invalid', 'The sign-in expired or was started in another browser; try again');
    const row = await this.ctx.db
      .deleteFrom('oauth_states')
      .where('id', '=', sha256hex(binding))
      .returningAll()
      .executeTakeFirst();
    if (!row || row.provider !== p.id || row.expires_at < Date.now())
      throw new AppError('oauth_state_invalid', 'The sign-in expired or was started in another browser; try again');

    const current = new URL(row.redirect_uri);
    current.search = new URL(req.url, 'http://callback.invalid').search;
    const q = current.searchParams;
    if (p.kind === 'oauth2') {
      // openid-client checks it too; compare first so a wrong state never reaches the token endpoint.
      if (!sameString(q.get('state') ?? '', row.state))
        throw new AppError('oauth_state_invalid', 'The sign-in response does not belong to this browser');
    }
    const cfg = await this.configuration(p);
    let tokens: Awaited<ReturnType<typeof Client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(cfg, current, {
        pkceCodeVerifier: row.code_verifier,
        expectedState: row.state,
        ...(row.nonce ? { expectedNonce: row.nonce, idTokenExpected: true } : {}),
      });
    } catch (e) {
      throw this.failure(p, e);
    }
    if (p.kind === 'oauth2') return this.github(p, tokens.access_token);

    const id = tokens.claims();
    if (!id) throw new AppError('oauth_failed', 'The identity provider returned no ID token');
    let claims: Record<string, unknown> = { ...id };
    if (cfg.serverMetadata().userinfo_endpoint) {
      try {
        const info = await client.fetchUserInfo(cfg, tokens.access_token, id.sub);
        claims = { ...id, ...info, sub: id.sub, iss: id.iss, aud: id.aud };
      } catch (e) {
        throw this.failure(p, e);
      }
    }
    return { subject: id.sub, claims, idpSid: typeof id.sid === 'string' ? id.sid.slice(0, 255) : null };
  }

  private failure(p: ProviderDef, e: unknown): AppError {
    if (e instanceof AppError) return e;
    if (e instanceof IdpFetchError || (e as { cause?: unknown }).cause instanceof IdpFetchError) {
      this.forget(p.id);
      return new AppError('oauth_provider_unavailable', 'The identity provider could not be reached');
    }
    const err = e as { code?: string; error?: string; message?: string; cause?: { message?: string; code?: string } };
    const detail = err.error ?? err.cause?.code ?? err.code ?? 'invalid_response';
    if (detail === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' || detail === 'OAUTH_JWS_SIGNATURE_VERIFICATION_FAILED')
      this.forget(p.id);
    return new AppError('oauth_failed', 'The identity provider response could not be verified', {
      reason: String(detail).slice(0, 100),
      // openid-client wraps the precise check that failed (state, iss, nonce, exp, alg…) in `cause`
      detail: String(err.cause?.message ?? err.message ?? '').slice(0, 300),
    });
  }

  /** GitHub: the numeric user id is the subject; the e-mail is the primary **verified** one. */
  private async github(p: ProviderDef, accessToken: string): Promise<ExternalClaims> {
    const api = p.endpoints!.api;
    const get = async (path: string): Promise<unknown> => {
      let res: Response;
      try {
        res = await this.fetcher.fetch(`${api}${path}`, {
          headers: {
            authorization: `Bearer ${accessToken}`,
            accept: 'application/vnd.github+json',
            'x-github-api-version': '2022-11-28',
          },
        });
      } catch {
        throw new AppError('oauth_provider_unavailable', 'GitHub could not be reached');
      }
      if (res.status !== 200) throw new AppError('oauth_failed', 'GitHub refused the access token');
      return res.json();
    };
    return githubClaims(
      (await get('/user')) as GithubUser,
      (await get('/user/emails').catch(() => [])) as GithubEmail[],
    );
  }
}

export interface GithubUser {
  id?: number;
  login?: string;
  name?: string | null;
  avatar_url?: string;
}
export interface GithubEmail {
  email?: string;
  primary?: boolean;
  verified?: boolean;
}

export function githubClaims(user: GithubUser, emails: GithubEmail[]): ExternalClaims {
  if (typeof user.id !== 'number' || !Number.isSafeInteger(user.id))
    throw new AppError('oauth_failed', 'GitHub did not return a user id');
  const list = Array.isArray(emails) ? emails : [];
  const verified = list.filter((e) => e.verified === true && typeof e.email === 'string');
  const chosen = verified.find((e) => e.primary) ?? verified[0];
  const claims: Record<string, unknown> = {
    sub: String(user.id),
    preferred_username: user.login,
    name: user.name || user.login,
    picture: httpsPicture(user.avatar_url),
  };
  if (chosen) {
    claims.email = chosen.email;
    claims.email_verified = true;
  }
  return { subject: String(user.id), claims, idpSid: null };
}

const services = new WeakMap<AppContext, OAuthService>();
export function oauthService(ctx: AppContext): OAuthService {
  let s = services.get(ctx);
  if (!s) {
    s = new OAuthService(ctx);
    services.set(ctx, s);
  }
  return s;
}

export { evaluateClaims };
