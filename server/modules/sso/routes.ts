import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Config } from '../../config/index.js';
import type { AppContext } from '../../context.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { accountSubject, ipSubject } from '../account-security/limiter.js';
import { SIGNIN_FAILED_MESSAGE } from '../account-security/service.js';
import { setSessionCookie } from '../auth/routes.js';
import { presentUser } from '../users/presenter.js';
import { backchannelLogout, LogoutTokenError } from './backchannel.js';
import { evaluateClaims } from './claims.js';
import { groupName, inGroups, ldapAuthenticate, ldapSettings, type LdapSettings } from './ldap.js';
import { oauthService } from './oauth.js';
import { checkSsoConfig, configuredProviders, PROVIDER_IDS, type ProviderDef } from './providers.js';
import { auditSignInFailure, openExternalSession, signInExternal, type ExternalIdentity } from './signin.js';

/** What GET /api/config shows about sign-in options (names and URLs only, never ids or secrets). */
export function publicSsoConfig(config: Config) {
  return {
    oauth_providers: configuredProviders(config).map((p) => ({
      id: p.id,
      name: p.name,
      login_url: `/oauth/${p.id}/login`,
    })),
    ldap: config.ENABLE_LDAP ? { label: config.LDAP_SERVER_LABEL ?? 'LDAP Server' } : null,
  };
}

const providerParam = z.object({ provider: z.enum(PROVIDER_IDS as [string, ...string[]]) });

/** Where the browser goes after a failed OAuth sign-in (the UI shows the code). */
function failRedirect(reply: FastifyReply, code: string) {
  reply.header('cache-control', 'no-store');
  return reply.redirect(`/?oauth_error=${encodeURIComponent(code)}`, 302);
}

export function registerSsoRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { config } = ctx;
  const { warnings, secrets } = checkSsoConfig(config);
  for (const w of warnings) ctx.log.warn(w);
  const oauth = oauthService(ctx);
  app.addHook('onClose', async () => oauth.fetcher.close());

  function providerOr404(id: string): ProviderDef {
    const p = oauth.provider(id);
    if (!p) throw notFound('Sign-in provider');
    return p;
  }

  route(app, {
    method: 'GET',
    url: '/oauth/:provider/login',
    auth: 'none',
    policy: 'public:oauth.login',
    tags: ['sso'],
    summary: 'Start an OAuth / OpenID Connect sign-in (redirects to the provider)',
    params: providerParam,
    handler: async (req, reply) => {
      const p = providerOr404(req.data.params.provider);
      try {
        const url = await oauth.begin(p, req, reply);
        reply.header('cache-control', 'no-store');
        return reply.redirect(url.href, 302);
      } catch (e) {
        req.log.warn(
          { provider: p.id, err: (e as Error).message, details: (e as AppError).details },
          'OAuth sign-in could not start',
        );
        auditSignInFailure(ctx, req, 'oidc', e);
        return failRedirect(reply, e instanceof AppError ? e.code : 'oauth_failed');
      }
    },
  });

  route(app, {
    method: 'GET',
    url: '/oauth/:provider/callback',
    auth: 'none',
    policy: 'public:oauth.callback (state, PKCE and nonce bound server-side)',
    tags: ['sso'],
    summary: 'Where the provider sends the browser back; opens the session and redirects to the UI',
    params: providerParam,
    query: z.object({}).passthrough(),
    handler: async (req, reply) => {
      const p = providerOr404(req.data.params.provider);
      let email: string | null = null;
      try {
        const ext = await oauth.complete(p, req);
        oauth.clearStateCookie(reply);
        const d = evaluateClaims(config, ext.claims);
        email = d.email;
        const x: ExternalIdentity = {
          provider: p.id,
          method: 'oidc',
          subject: ext.subject,
          email: d.email,
          name: d.name,
          picture: d.picture,
          role: d.role,
          groups: config.ENABLE_OAUTH_GROUP_MANAGEMENT ? d.groups : null,
          createGroups: config.ENABLE_OAUTH_GROUP_CREATION,
          mergeByEmail: config.OAUTH_MERGE_ACCOUNTS_BY_EMAIL && d.emailVerified,
          allowSignup: config.ENABLE_OAUTH_SIGNUP,
          sessionKind: `oidc:${p.id}`,
          maxSessions: config.OAUTH_MAX_SESSIONS_PER_USER,
          idpSid: ext.idpSid,
        };
        const r = await signInExternal(ctx, req, x);
        setSessionCookie(ctx, reply, r.token!);
        reply.header('cache-control', 'no-store');
        return reply.redirect('/', 302);
      } catch (e) {
        oauth.clearStateCookie(reply);
        req.log.warn(
          { provider: p.id, code: (e as AppError).code, err: (e as Error).message, details: (e as AppError).details },
          'OAuth sign-in refused',
        );
        auditSignInFailure(ctx, req, 'oidc', e, { email });
        if (!(e instanceof AppError)) throw e;
        return failRedirect(reply, e.code);
      }
    },
  });

  // Back-channel logout: form-encoded POST from the provider (its own body parser, in this scope only).
  app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 16 * 1024 },
      (_req, body, done) => {
        try {
          done(null, Object.fromEntries(new URLSearchParams(body as string)));
        } catch (e) {
          done(e as Error, undefined);
        }
      },
    );
    route(scope, {
      method: 'POST',
      url: '/oauth/:provider/backchannel-logout',
      auth: 'none',
      policy: 'public:oauth.backchannel-logout (signed logout token)',
      tags: ['sso'],
      summary: 'OpenID Connect back-channel logout (ENABLE_OAUTH_BACKCHANNEL_LOGOUT)',
      params: providerParam,
      bodyLimit: 16 * 1024,
      handler: async (req, reply) => {
        if (!config.ENABLE_OAUTH_BACKCHANNEL_LOGOUT) throw notFound('Back-channel logout');
        const p = providerOr404(req.data.params.provider);
        reply.header('cache-control', 'no-store');
        const body = req.body as Record<string, unknown> | undefined;
        const token = typeof body?.logout_token === 'string' ? body.logout_token : '';
        try {
          if (!token || token.length > 8192) throw new LogoutTokenError('logout_token is required');
          const n = await backchannelLogout(ctx, oauth, p, token, req);
          req.log.info({ provider: p.id, sessions_revoked: n }, 'back-channel logout');
          return reply.code(200).send({});
        } catch (e) {
          if (!(e instanceof LogoutTokenError) && !(e instanceof AppError)) throw e;
          ctx.audit.auth({
            action: 'auth.signout',
            result: 'failure',
            method: 'oidc',
            reason: `backchannel_logout: ${e.message}`.slice(0, 200),
            ip: req.ip ?? null,
            requestId: req.id,
          });
          return reply.code(400).send({ error: 'invalid_request', error_description: e.message });
        }
      },
    });
  });

  // ---- LDAP
  let ldap: LdapSettings | null = null;
  if (config.ENABLE_LDAP) ldap = ldapSettings(config, secrets.ldapAppPassword);

  route(app, {
    method: 'POST',
    url: '/api/v1/auths/ldap',
    auth: 'none',
    policy: 'public:ldap.signin',
    setsSession: true,
    bodyLimit: 16 * 1024,
    tags: ['auth', 'sso'],
    summary: 'Sign in with a directory (LDAP) user name and password',
    body: z.object({ user: z.string().trim().min(1).max(256), password: z.string().max(1024) }).strict(),
    handler: async (req, reply) => {
      const { user: username, password } = req.data.body;
      const who: { email: string | null; userId: string | null } = { email: null, userId: null };
      const refuse = (e: AppError): never => {
        auditSignInFailure(ctx, req, 'ldap', e, who);
        throw e;
      };
      if (!ldap) refuse(new AppError('ldap_disabled', 'LDAP sign-in is not enabled on this server'));
      const sec = ctx.accountSecurity;
      const attempt = await sec.limiter.attempt([accountSubject(`ldap:${username.toLowerCase()}`), ipSubject(req.ip)]);
      sec.auditLockouts(req, attempt, 'ldap');
      if (!attempt.allowed) refuse(new AppError('invalid_credentials', SIGNIN_FAILED_MESSAGE));
      let found;
      try {
        found = await ldapAuthenticate(ldap!, username, password);
      } catch (e) {
        // The directory being down is nobody's failed attempt.
        if (e instanceof AppError && e.code === 'ldap_unavailable') {
          await sec.limiter.release(attempt);
          req.log.warn({ err: (e.details as { cause?: string })?.cause }, 'LDAP directory unavailable');
        }
        refuse(e instanceof AppError ? e : new AppError('ldap_unavailable', 'The directory server did not answer'));
      }
      const email = (found!.email ?? '').trim().toLowerCase();
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email) || email.length > 320) {
        await sec.limiter.release(attempt);
        refuse(
          new AppError(
            'oauth_email_missing',
            `The directory entry has no usable e-mail address (${config.LDAP_ATTRIBUTE_FOR_MAIL})`,
          ),
        );
      }
      who.email = email;
      const groups = found!.groups;
      if (
        config.LDAP_ALLOWED_GROUPS.length &&
        !inGroups(groups, [...config.LDAP_ALLOWED_GROUPS, ...config.LDAP_ADMIN_GROUPS])
      ) {
        await sec.limiter.release(attempt);
        refuse(new AppError('forbidden', 'Your directory account is not in a group allowed to sign in'));
      }
      const isAdmin = inGroups(groups, config.LDAP_ADMIN_GROUPS);
      const manageRoles = config.LDAP_ADMIN_GROUPS.length > 0;
      const x: ExternalIdentity = {
        provider: 'ldap',
        method: 'ldap',
        subject: found!.subject,
        email,
        name: (found!.name ?? username).slice(0, 200),
        picture: null,
        role: (current) => {
          if (!manageRoles) return null;
          if (isAdmin) return 'admin';
          if (current === 'admin') return 'user';
          return config.LDAP_ALLOWED_GROUPS.length ? 'user' : null;
        },
        groups: config.ENABLE_LDAP_GROUP_MANAGEMENT ? groups.map(groupName) : null,
        createGroups: config.ENABLE_LDAP_GROUP_CREATION,
        mergeByEmail: false,
        allowSignup: true,
        sessionKind: 'ldap',
        maxSessions: null,
        idpSid: null,
      };
      let r;
      try {
        r = await signInExternal(ctx, req, x, { session: false });
      } catch (e) {
        await sec.limiter.release(attempt);
        if (e instanceof AppError) refuse(e);
        throw e;
      }
      who.userId = r.user.id;
      // Two-factor authentication applies to directory passwords as to local ones.
      const next = await sec.afterFirstFactor(req, r.user, attempt, 'ldap');
      if (next.challenge) return next.challenge;
      const { token } = await openExternalSession(ctx, req, r.user, x, r.created);
      setSessionCookie(ctx, reply, token);
      return { token, token_type: 'Bearer', user: presentUser(r.user), ...next.notices };
    },
  });
}
