import type { FastifyRequest } from 'fastify';
import type { AppContext, AuthContext } from '../../context.js';
import type { User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { permissionDefaults, type Membership, type PermissionSet } from './permissions.js';

/**
 * Who a decision is about. During impersonation the actor has the *subject's* permissions
 * (`userId`) while `actorId` names the admin (recorded in audit events). An API-key actor has its
 * owner's current permissions, narrowed by the key's model allowlist.
 */
export interface Actor {
  readonly userId: string;
  /** The admin acting during impersonation; otherwise `userId`. */
  readonly actorId: string;
  readonly role: User['role'];
  readonly active: boolean;
  /** role admin and BYPASS_ADMIN_ACCESS_CONTROL=true. */
  readonly adminBypass: boolean;
  readonly apiKey: { readonly id: string; readonly allowedModels: readonly string[] | null } | null;
  /** The USER_PERMISSIONS_* defaults in force. */
  readonly defaults: Readonly<PermissionSet>;
  /** Group memberships, loaded once on first use (see ensureMemberships). */
  memberships?: readonly Membership[];
}

export function actorForUser(
  ctx: Pick<AppContext, 'config'>,
  user: Pick<User, 'id' | 'role' | 'active'>,
  opts: { actorId?: string; apiKey?: Actor['apiKey']; memberships?: readonly Membership[] } = {},
): Actor {
  return {
    userId: user.id,
    actorId: opts.actorId ?? user.id,
    role: user.role,
    active: user.active === 1,
    adminBypass: user.role === 'admin' && ctx.config.BYPASS_ADMIN_ACCESS_CONTROL,
    apiKey: opts.apiKey ?? null,
    defaults: permissionDefaults(ctx.config),
    ...(opts.memberships ? { memberships: opts.memberships } : {}),
  };
}

/** Extra facts attached to an AuthContext by the API-key verifier (model allowlist, cached groups). */
export interface AuthExtras {
  allowedModels: readonly string[] | null;
  memberships?: readonly Membership[];
}
const extras = new WeakMap<AuthContext, AuthExtras>();
export function attachAuthExtras(auth: AuthContext, x: AuthExtras): void {
  extras.set(auth, x);
}

const actors = new WeakMap<FastifyRequest, Actor>();

/** The request's actor (memoised per request). Throws 401 on an unauthenticated request. */
export function actorOf(ctx: Pick<AppContext, 'config'>, req: FastifyRequest): Actor {
  let a = actors.get(req);
  if (a) return a;
  const auth = req.auth;
  if (!auth) throw new AppError('unauthenticated', 'Sign in or send an API key');
  const x = extras.get(auth);
  a = actorForUser(ctx, auth.user, {
    actorId: auth.actorId,
    apiKey: auth.kind === 'api-key' ? { id: auth.keyId ?? '', allowedModels: x?.allowedModels ?? null } : null,
    memberships: x?.memberships,
  });
  actors.set(req, a);
  return a;
}
