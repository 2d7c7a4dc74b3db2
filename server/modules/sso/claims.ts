import type { Config } from '../../config/index.js';
import { AppError } from '../../platform/http/errors.js';

/**
 * What the provider's claims decide, applied at every OAuth sign-in, in this order: an e-mail is
 * required; its domain must be allowed (OAUTH_ALLOWED_DOMAINS, exact match after the last `@`);
 * no group may match OAUTH_BLOCKED_GROUPS (the sign-in is refused); with role management, the
 * roles claim decides admin / user / refused — and a missing roles claim refuses the sign-in
 * without touching the account.
 */
export interface ClaimsDecision {
  email: string;
  emailVerified: boolean;
  name: string;
  picture: string | null;
  /** null when the groups claim is absent (no group sync then). */
  groups: string[] | null;
  /** null when role management is off. */
  role: 'admin' | 'user' | null;
}

/** Reads `a.b.c` from nested claims; a claim whose own name contains dots wins. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** A list claim: an array of strings, or one string of comma/space separated values. */
export function listClaim(v: unknown): string[] | null {
  if (v === undefined || v === null) return null;
  if (Array.isArray(v))
    return v
      .filter((x): x is string | number => typeof x === 'string' || typeof x === 'number')
      .map((x) => String(x).trim())
      .filter((x) => x !== '')
      .slice(0, 1000);
  if (typeof v === 'string')
    return v
      .split(/[,\s]+/)
      .map((x) => x.trim())
      .filter((x) => x !== '')
      .slice(0, 1000);
  return [];
}

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

export function isVerified(v: unknown): boolean {
  return v === true || v === 'true';
}

export function emailDomain(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1).toLowerCase();
}

export function domainAllowed(config: Pick<Config, 'OAUTH_ALLOWED_DOMAINS'>, email: string): boolean {
  const allowed = config.OAUTH_ALLOWED_DOMAINS;
  if (allowed.includes('*')) return true;
  const d = emailDomain(email);
  return allowed.some((a) => a.toLowerCase().replace(/^@/, '') === d);
}

export function httpsPicture(v: unknown): string | null {
  if (typeof v !== 'string' || v.length > 2048) return null;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' && !u.username && !u.password ? u.href : null;
  } catch {
    return null;
  }
}

export function evaluateClaims(config: Config, claims: Record<string, unknown>): ClaimsDecision {
  const rawEmail = claimAt(claims, config.OAUTH_EMAIL_CLAIM || 'email');
  const email = typeof rawEmail === 'string' ? rawEmail.trim().toLowerCase() : '';
  if (!email || email.length > 320 || !EMAIL.test(email))
    throw new AppError('oauth_email_missing', 'The identity provider did not send an e-mail address');
  if (!domainAllowed(config, email))
    throw new AppError('oauth_domain_not_allowed', 'Sign-in with this e-mail domain is not allowed', {
      domain: emailDomain(email),
    });

  const groups = listClaim(claimAt(claims, config.OAUTH_GROUPS_CLAIM || 'groups'));
  for (const g of groups ?? []) {
    const hit = config.OAUTH_BLOCKED_GROUPS.find((m) => m.test(g));
    if (hit) throw new AppError('oauth_group_blocked', 'A group you belong to is not allowed to sign in');
  }

  let role: 'admin' | 'user' | null = null;
  if (config.ENABLE_OAUTH_ROLE_MANAGEMENT) {
    const roles = listClaim(claimAt(claims, config.OAUTH_ROLES_CLAIM || 'roles'));
    if (roles === null)
      throw new AppError(
        'oauth_role_claim_missing',
        `The identity provider did not send the roles claim (${config.OAUTH_ROLES_CLAIM}); the sign-in is refused and the account is unchanged`,
      );
    const has = (list: string[]) => roles.some((r) => list.includes(r));
    if (has(config.OAUTH_ADMIN_ROLES)) role = 'admin';
    else if (has(config.OAUTH_ALLOWED_ROLES)) role = 'user';
    else throw new AppError('oauth_role_not_allowed', 'None of your roles at the identity provider may sign in');
  }

  const rawName = claimAt(claims, config.OAUTH_USERNAME_CLAIM || 'name');
  const fallback = typeof claims.preferred_username === 'string' ? claims.preferred_username : email.split('@')[0]!;
  const name = (typeof rawName === 'string' && rawName.trim() ? rawName.trim() : fallback).slice(0, 200);
  const picture = config.OAUTH_PICTURE_CLAIM ? httpsPicture(claimAt(claims, config.OAUTH_PICTURE_CLAIM)) : null;

  return { email, emailVerified: isVerified(claims.email_verified), name, picture, groups, role };
}
