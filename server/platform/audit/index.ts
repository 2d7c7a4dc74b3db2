import type { FastifyRequest } from 'fastify';
import type { Db, Trx } from '../db/index.js';

/**
 * The audit seam every module writes to. A domain event (user role changed, key created, share
 * link created, …) is recorded with `record(trx, …)` inside the same transaction as the change.
 * Authentication outcomes (sign-in/out/up, every failure) go through `auth(…)`, which is always
 * written whatever the path filters say. The implementation is `service.ts` (AuditPipeline); how
 * to use it: docs/security.md, "Audit logging".
 */
export interface DomainEvent {
  /** Dotted verb, e.g. `user.role_changed`, `api_key.created`. */
  action: string;
  /** Who did it (the admin during impersonation); null for anonymous. */
  actorId: string | null;
  /** Whose account it acted as (differs from actorId during impersonation). */
  subjectId?: string | null;
  resourceType: string;
  resourceId?: string | null;
  /** Snapshots; secrets are masked by the audit layer before writing. */
  before?: unknown;
  after?: unknown;
  result?: 'success' | 'failure';
  ip?: string | null;
  requestId?: string | null;
  details?: Record<string, unknown>;
}

export interface AuthEvent {
  action: 'auth.signin' | 'auth.signout' | 'auth.signup' | 'auth.failure' | string;
  result: 'success' | 'failure';
  /** password | api_key | token | oidc | ldap | trusted_header | scim | totp … */
  method: string;
  userId?: string | null;
  email?: string | null;
  reason?: string;
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
}

export interface AuditService {
  /**
   * Appends a domain event to the hash-chained trail inside the caller's transaction: call it with
   * the `trx` of the change, after the change, so both commit or neither. Given the plain `db`, it
   * opens its own transaction. Before/after/details are masked (secret keys, API keys, tokens).
   */
  record(db: Db | Trx, event: DomainEvent): Promise<void>;
  /**
   * An authentication outcome with no transaction to join (every failure: password, api_key,
   * token, oidc, ldap …). Never throws and never waits: queued to the trail and the audit log.
   */
  auth(event: AuthEvent): void;
  /** A successful sign-in/sign-up/sign-out, written in the same transaction as its session change. */
  recordAuth(trx: Trx, event: AuthEvent): Promise<void>;
  /** Waits until queued audit log lines and authentication events are written (tests, shutdown). */
  flush(): Promise<void>;
}

/** IP, user agent and request id of a request, for `auth(…)`. */
export function authFromRequest(req: FastifyRequest): Pick<AuthEvent, 'ip' | 'userAgent' | 'requestId'> {
  const ua = req.headers['user-agent'];
  return { ip: req.ip ?? null, userAgent: typeof ua === 'string' ? ua : null, requestId: req.id };
}

/** Fills actor, subject, IP and request id from a request. */
export function fromRequest(req: FastifyRequest): Pick<DomainEvent, 'actorId' | 'subjectId' | 'ip' | 'requestId'> {
  return {
    actorId: req.auth?.actorId ?? null,
    subjectId: req.auth?.user.id ?? null,
    ip: req.ip ?? null,
    requestId: req.id,
  };
}

/** An audit service that records nothing, for unit tests of code that needs one (the app uses service.ts). */
export const noopAudit: AuditService = {
  async record() {},
  auth() {},
  async recordAuth() {},
  async flush() {},
};
