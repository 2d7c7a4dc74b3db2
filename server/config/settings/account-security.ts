import { bool, custom, oneOf, requiredInt, text, type SettingDef } from '../types.js';

const AREA = 'Account security';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `0` or a duration such as `500ms`, `1s`, `15m`, `1h30m`, `1d`, within [min, max] milliseconds. */
export function parseSpan(raw: string, min: number, max: number): number {
  const t = raw.trim();
  if (t === '0') {
    if (min > 0) throw `must be at least ${min} ms (got 0)`;
    return 0;
  }
  if (!/^(\d+(ms|s|m|h|d))+$/.test(t)) throw `"${raw}" is not a duration; use e.g. 500ms, 30s, 15m, 1h, 1d`;
  let total = 0;
  for (const m of t.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNITS[m[2]!]!;
  if (total < min || total > max) throw `must be between ${min} ms and ${max} ms (got ${total} ms)`;
  return total;
}

function span(def: string, min: number, max: number, description: string) {
  return custom<number>(
    def,
    `a duration: ms, s, m, h, d (e.g. ${def})${min === 0 ? ', or 0' : ''}`,
    { area: AREA, description },
    (raw) => parseSpan(raw === undefined || raw.trim() === '' ? def : raw, min, max),
  );
}

const DAY = 86_400_000;

/**
 * Two-factor authentication, the login limiter and the no-authentication policy
 * (see docs/security.md, "Account security").
 */
export const accountSecuritySettings = {
  ENABLE_2FA: bool(true, {
    area: AREA,
    description:
      'Users may turn on two-factor authentication with a TOTP app (Google Authenticator, Authy, 1Password…) and ten one-time recovery codes. `false` stops new enrolments; accounts that already use 2FA keep being asked for a code (an admin can reset a user’s 2FA).',
  }),
  ENFORCE_2FA: bool(false, {
    area: AREA,
    description:
      'Every user who signs in with a password (or LDAP) must use 2FA: a user without it can only enrol (`/api/v1/auths/2fa/*`), read their account and sign out until they do, and cannot turn 2FA off. Sessions from single sign-on (OIDC, trusted header) are exempt — the identity provider is responsible for MFA there. Requires ENABLE_2FA=true.',
  }),
  TWO_FACTOR_ISSUER: text('HridaAI', {
    area: AREA,
    allowed: 'text of at most 64 characters without ":"',
    validate: (v) =>
      v.length > 64 || v.includes(':') ? 'must be at most 64 characters and contain no ":"' : undefined,
    description: 'The issuer name authenticator apps show next to the account (the `issuer` of the otpauth URI).',
  }),
  TWO_FACTOR_CHALLENGE_TTL: span(
    '5m',
    10_000,
    DAY,
    'How long the sign-in challenge token (issued after a correct password, exchanged for a session with a code) stays valid.',
  ),
  TWO_FACTOR_MAX_ATTEMPTS: requiredInt(
    5,
    { min: 1, max: 100 },
    {
      area: AREA,
      description:
        'Codes that may be tried against one sign-in challenge; after that the challenge is spent and the user signs in with the password again. Every wrong code also counts against the login limiter.',
    },
  ),
  LOGIN_MAX_ATTEMPTS: requiredInt(
    5,
    { min: 1, max: 1000 },
    {
      area: AREA,
      description:
        'Failed sign-in attempts (password, LDAP, 2FA code, recovery code) for one account before it is locked for LOGIN_LOCKOUT_DURATION. Counted per submitted identifier, whether or not the account exists, in the database (or Redis when REDIS_URL is set) so every worker and instance shares the count.',
    },
  ),
  LOGIN_IP_MAX_ATTEMPTS: requiredInt(
    50,
    { min: 1, max: 100_000 },
    {
      area: AREA,
      description:
        'Failed attempts (any account, and failed API keys) from one client address — an IPv6 address counts as its /64 — before that address is locked for LOGIN_LOCKOUT_DURATION. Catches password spraying (one password tried on many accounts). The client address is taken from X-Forwarded-For only when the peer is in FORWARDED_ALLOW_IPS.',
    },
  ),
  LOGIN_LOCKOUT_DURATION: span(
    '15m',
    1000,
    30 * DAY,
    'How long a lockout lasts. Each further lockout of the same account or address within LOGIN_ATTEMPT_WINDOW doubles it, up to LOGIN_LOCKOUT_MAX_DURATION. Admins list and clear lockouts at `/api/v1/admin/lockouts`.',
  ),
  LOGIN_LOCKOUT_MAX_DURATION: span('24h', 1000, 365 * DAY, 'The longest a repeated lockout can last.'),
  LOGIN_BACKOFF_BASE: span(
    '1s',
    0,
    3_600_000,
    'Exponential back-off between failures before the lockout: once half of the allowed failures are spent (LOGIN_MAX_ATTEMPTS for an account, LOGIN_IP_MAX_ATTEMPTS for an address), the next attempt must wait this long, then twice as long after each further failure (capped at LOGIN_BACKOFF_MAX). Attempts made too early are refused without being checked. `0` turns the back-off off.',
  ),
  LOGIN_BACKOFF_MAX: span('1m', 0, DAY, 'The longest back-off between two attempts.'),
  LOGIN_ATTEMPT_WINDOW: span(
    '1h',
    1000,
    30 * DAY,
    'Failures and lockouts are forgotten after this long without a new failure (a successful sign-in clears the account’s count at once; it never clears an address’s count).',
  ),
  POLICY_NO_AUTH_DEFAULT: oneOf(['deny', 'view_only', 'allow_all'] as const, 'deny', {
    area: AREA,
    description:
      'What a request without credentials may do. `deny` (default): sign in first. `view_only`: anonymous GET requests on routes that declare themselves viewable are answered as the first admin account, read-only (everything else still needs a sign-in) — for trusted single-user or demo setups. `allow_all`: anyone who can reach the server acts as that admin — refused at start with ENV=prod, a loud warning otherwise. Never use anything but `deny` on a network you do not fully trust.',
  }),
} satisfies Record<string, SettingDef<unknown>>;
