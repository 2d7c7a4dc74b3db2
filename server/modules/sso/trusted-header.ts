import { randomUUID } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config/index.js';
import type { AppContext, AuthContext } from '../../context.js';
import { authFromRequest } from '../../platform/audit/index.js';
import type { User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { provisionUser } from '../auth/accounts.js';
import { apiKeyService } from '../api-keys/service.js';
import { syncGroupMemberships } from './group-sync.js';

/**
 * Trusted-header authentication (an authenticating reverse proxy: Authelia, Authentik,
 * oauth2-proxy). The e-mail header is believed **only** when the request's direct peer — the TCP
 * address of the socket, never X-Forwarded-For — is listed in FORWARDED_ALLOW_IPS, and never when
 * FORWARDED_ALLOW_IPS is `*`. Otherwise the header is ignored (a warning is logged at start).
 *
 * A believed header authenticates the request as that person (no session row: the proxy vouches
 * for every request, and a deactivation takes effect on the next request). It is an ambient
 * credential like a cookie, so the CSRF origin check applies. If the request also carries a
 * session cookie or token of **another** user, it is refused (`trusted_header_mismatch`).
 *
 * The identity is (trusted_header, e-mail). An unknown e-mail gets an account following the
 * sign-up rules: the first account of a fresh install (admin), else only with ENABLE_SIGNUP=true
 * and role DEFAULT_USER_ROLE; otherwise the request is refused with `signup_disabled`.
 */
export const TRUSTED_HEADER_PROVIDER = 'trusted_header';
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const CACHE_MS = 1000;

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

function normalise(addr: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = addr.replace(/%.*$/, '');
  if (!ipaddr.isValid(bare)) return null;
  const a = ipaddr.parse(bare);
  return a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
}

/** Matches a direct peer address against FORWARDED_ALLOW_IPS (IPs and CIDR ranges). */
export function peerMatcher(list: readonly string[]): (addr: string | undefined) => boolean {
  const ranges: Range[] = list.map((e) => {
    if (e.includes('/')) {
      const [a, bits] = ipaddr.parseCIDR(e);
      const n =
        a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
      return [n, n.kind() === a.kind() ? bits : bits - 96];
    }
    const a = normalise(e)!;
    return [a, a.kind() === 'ipv4' ? 32 : 128];
  });
  return (addr) => {
    if (!addr) return false;
    const a = normalise(addr);
    if (!a) return false;
    return ranges.some(([r, bits]) => r.kind() === a.kind() && a.match(r, bits));
  };
}

export interface TrustedHeaderConfig {
  emailHeader: string;
  nameHeader: string | null;
  groupsHeader: string | null;
  trusted: (addr: string | undefined) => boolean;
}

export function trustedHeaderConfig(config: Config): TrustedHeaderConfig | null {
  if (!config.HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER || config.FORWARDED_ALLOW_IPS === '*') return null;
  return {
    emailHeader: config.HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER,
    nameHeader: config.HRIDAAI_AUTH_TRUSTED_NAME_HEADER,
    groupsHeader: config.HRIDAAI_AUTH_TRUSTED_GROUPS_HEADER,
    trusted: peerMatcher(config.FORWARDED_ALLOW_IPS),
  };
}

function headerValue(req: FastifyRequest, name: string): string | null {
  const v = req.headers[name];
  if (v === undefined) return null;
  // A repeated identity header is ambiguous: refuse rather than pick one.
  if (Array.isArray(v)) throw new AppError('trusted_header_invalid', `The ${name} header appears more than once`);
  return v.trim();
}

interface Cached {
  user: User;
  groups: string | null;
  at: number;
}

const caches = new WeakMap<AppContext, { cfg: TrustedHeaderConfig | null; users: Map<string, Cached> }>();

function stateOf(ctx: AppContext) {
  let s = caches.get(ctx);
  if (!s) {
    s = { cfg: trustedHeaderConfig(ctx.config), users: new Map() };
    caches.set(ctx, s);
  }
  return s;
}

/**
 * The user the trusted proxy vouches for on this request, or null (not configured, peer not
 * trusted, or no header). Throws when the header is present from a trusted peer but cannot be
 * honoured (malformed, account deactivated, sign-up closed).
 */
export async function trustedHeaderAuth(ctx: AppContext, req: FastifyRequest): Promise<AuthContext | null> {
  const state = stateOf(ctx);
  const cfg = state.cfg;
  if (!cfg) return null;
  if (!cfg.trusted(req.socket?.remoteAddress)) return null;
  let raw: string | null;
  try {
    raw = headerValue(req, cfg.emailHeader);
  } catch (e) {
    fail(ctx, req, e, null);
  }
  if (raw === null || raw === '') return null;
  const email = raw.toLowerCase();
  if (email.length > 320 || !EMAIL.test(email))
    fail(ctx, req, new AppError('trusted_header_invalid', 'The trusted e-mail header is not an e-mail address'), null);
  const groupsRaw = cfg.groupsHeader ? headerValue(req, cfg.groupsHeader) : null;

  const now = Date.now();
  let hit = state.users.get(email);
  if (!hit || now - hit.at > Math.min(CACHE_MS, ctx.config.SESSION_CACHE_TTL_MS)) {
    let user: User;
    try {
      user = await resolveUser(ctx, req, email, cfg.nameHeader ? headerValue(req, cfg.nameHeader) : null);
    } catch (e) {
      fail(ctx, req, e, email);
    }
    hit = { user, groups: hit?.user.id === user.id ? hit.groups : null, at: now };
    if (state.users.size > 10_000) state.users.clear();
    state.users.set(email, hit);
  }
  if (!hit.user.active) fail(ctx, req, new AppError('account_inactive', 'This account is deactivated'), email);

  if (cfg.groupsHeader && groupsRaw !== null && groupsRaw !== hit.groups) {
    const names = groupsRaw
      .split(',')
      .map((g) => g.trim())
      .filter(Boolean);
    const userId = hit.user.id;
    const r = await ctx.db
      .transaction()
      .execute((trx) =>
        syncGroupMemberships(ctx, trx, { userId, source: `idp:${TRUSTED_HEADER_PROVIDER}`, names, create: false }),
      );
    hit.groups = groupsRaw;
    if (r.added.length + r.removed.length) await apiKeyService(ctx).invalidate({ user: userId });
  }
  return { kind: 'session', user: hit.user, session: null, actorId: hit.user.id, viaCookie: true };
}

function fail(ctx: AppContext, req: FastifyRequest, e: unknown, email: string | null): never {
  ctx.audit.auth({
    action: 'auth.failure',
    result: 'failure',
    method: 'trusted_header',
    reason: e instanceof AppError ? e.code : 'internal_error',
    email,
    ...authFromRequest(req),
  });
  throw e;
}

async function resolveUser(ctx: AppContext, req: FastifyRequest, email: string, name: string | null): Promise<User> {
  const find = () =>
    ctx.db
      .selectFrom('users')
      .leftJoin('identities', (j) =>
        j
          .onRef('identities.user_id', '=', 'users.id')
          .on('identities.provider', '=', TRUSTED_HEADER_PROVIDER)
          .on('identities.subject', '=', email),
      )
      .selectAll('users')
      .select('identities.id as identity_id')
      .where('users.email', '=', email)
      .executeTakeFirst();
  const found = await find();
  if (found) {
    const { identity_id, ...user } = found;
    if (!identity_id && user.active)
      await ctx.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('identities')
          .values({
            id: randomUUID(),
            user_id: user.id,
            provider: TRUSTED_HEADER_PROVIDER,
            subject: email,
            created_at: Date.now(),
          })
          .onConflict((oc) => oc.columns(['provider', 'subject']).doNothing())
          .execute();
        await ctx.audit.record(trx, {
          action: 'identity.linked',
          actorId: null,
          subjectId: user.id,
          resourceType: 'user',
          resourceId: user.id,
          ip: req.ip ?? null,
          requestId: req.id,
          details: { provider: TRUSTED_HEADER_PROVIDER, by: 'proxy_email' },
        });
      });
    return user as User;
  }
  const displayName = (name && name.length <= 200 ? name : '') || email.split('@')[0]!;
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      const user = await provisionUser(trx, {
        email,
        name: displayName,
        passwordHash: null,
        provider: TRUSTED_HEADER_PROVIDER,
        subject: email,
        roleIfNotFirst: ctx.config.ENABLE_SIGNUP ? ctx.config.DEFAULT_USER_ROLE : null,
      });
      await ctx.audit.record(trx, {
        action: 'user.created',
        actorId: null,
        subjectId: user.id,
        resourceType: 'user',
        resourceId: user.id,
        ip: req.ip ?? null,
        requestId: req.id,
        after: { email: user.email, name: user.name, role: user.role },
        details: { via: TRUSTED_HEADER_PROVIDER },
      });
      await ctx.audit.recordAuth(trx, {
        action: 'auth.signup',
        result: 'success',
        method: 'trusted_header',
        userId: user.id,
        email: user.email,
        ...authFromRequest(req),
      });
      return user;
    });
  } catch (e) {
    if (e instanceof AppError && e.code === 'email_taken') {
      const again = await find();
      if (again) {
        const { identity_id: _ignored, ...user } = again;
        return user as User;
      }
    }
    throw e;
  }
}

/** Refuses a credential of another user on a request the trusted proxy vouched for. */
export function checkTrustedHeaderMatch(
  ctx: AppContext,
  req: FastifyRequest,
  header: AuthContext,
  auth: AuthContext,
): void {
  if (header.user.id === auth.user.id) return;
  fail(
    ctx,
    req,
    new AppError('trusted_header_mismatch', 'The signed-in session belongs to another user than the proxy reports'),
    header.user.email,
  );
}
