import { bool, custom, oneOf, requiredInt, text, type SettingDef } from './types.js';
import { auditSettings } from './settings/audit.js';
import { accessSettings } from './settings/access.js';
import { gatewaySettings } from './settings/gateway.js';
import { netSettings } from './settings/net.js';
import { filesSettings } from './settings/files.js';
import { chatsSettings } from './settings/chats.js';
import { observabilitySettings } from './settings/observability.js';
import { accountSecuritySettings } from './settings/account-security.js';
import { ssoSettings } from './settings/sso.js';
import { codeSettings } from './settings/code.js';
import {
  parseCorsOrigins,
  parseDuration,
  parseForwardedAllowIps,
  referrerPolicyAllowed,
  validateCsp,
  validateHsts,
  normaliseHsts,
  validatePermissionsPolicy,
  validateReferrerPolicy,
  validateReportingEndpoints,
} from './validators.js';

const A = {
  server: 'Server',
  secret: 'Secret key',
  auth: 'Authentication and sign-up',
  cookies: 'Sessions and cookies',
  http: 'HTTP hardening',
  db: 'Database',
  redis: 'Redis',
  log: 'Logging',
};

function regexValidator(v: string): string | undefined {
  try {
    new RegExp(v);
    return undefined;
  } catch (e) {
    return `is not a valid regular expression: ${(e as Error).message}`;
  }
}

/**
 * Every setting HridaAI reads. Defaults are the ones the hardening guide documents.
 * Order here is the order in docs/configuration.md.
 */
const coreSettings = {
  // ---- Server
  ENV: oneOf(['dev', 'prod', 'test'] as const, 'dev', {
    area: A.server,
    description:
      '`prod` hides the OpenAPI document and docs UI and turns on production warnings. `hrida-ai serve` and `npm start` use `prod` when ENV is unset; other entry points (tests, `npm run dev`) use `dev`.',
  }),
  HOST: text('127.0.0.1', {
    area: A.server,
    allowed: 'an IP address or host name to listen on',
    description:
      'Address the HTTP server listens on. Loopback by default so a fresh install is not exposed; set `0.0.0.0` (or `::`) behind a reverse proxy on another host or in a container.',
  }),
  PORT: requiredInt(8080, { min: 1, max: 65535 }, { area: A.server, description: 'TCP port of the HTTP server.' }),
  DATA_DIR: text('./data', {
    area: A.server,
    allowed: 'a directory path',
    description:
      'Directory for the SQLite database, the generated secret key and uploaded files. Created with mode 0700 if missing.',
  }),

  // ---- Secret key
  HRIDAAI_SECRET_KEY: text(null, {
    area: A.secret,
    secret: true,
    allowed: 'a string of at least 16 characters (generate with `openssl rand -base64 32`)',
    validate: (v) =>
      v.length < 16 ? 'must be at least 16 characters (generate with `openssl rand -base64 32`)' : undefined,
    description:
      'Root secret: signs session tokens and derives every other key (HKDF per purpose). When unset, a random key is generated with a CSPRNG, saved to `<DATA_DIR>/.hridaai_secret_key` (mode 0600) and reloaded on restart. Every instance behind a load balancer must share it.',
  }),
  HRIDAAI_SECRET_KEY_PREVIOUS: text(null, {
    area: A.secret,
    secret: true,
    allowed: 'the previous value of HRIDAAI_SECRET_KEY',
    description:
      'Key rotation without signing everyone out: tokens signed with this key (picked by the `kid` in their header) keep verifying until they expire; new tokens are signed with HRIDAAI_SECRET_KEY.',
  }),

  // ---- Authentication and sign-up
  ENABLE_SIGNUP: bool(false, {
    area: A.auth,
    description:
      'Sign-up is always open for the very first account (it becomes the admin) and closes after it. `true` keeps sign-up open for everyone afterwards, with DEFAULT_USER_ROLE.',
  }),
  DEFAULT_USER_ROLE: oneOf(['pending', 'user'] as const, 'pending', {
    area: A.auth,
    description:
      'Role of accounts created after the first one. `pending` accounts can do nothing but read their own account and sign out until an admin approves them. `admin` is refused at start (a warning is logged for `user`).',
  }),
  ENABLE_PASSWORD_VALIDATION: bool(false, {
    area: A.auth,
    description:
      'Check new passwords (sign-up, password change, HRIDAAI_ADMIN_PASSWORD) against PASSWORD_VALIDATION_REGEX_PATTERN.',
  }),
  PASSWORD_VALIDATION_REGEX_PATTERN: text('^(?=.*[a-z])(?=.*[A-Z])(?=.*\\d)(?=.*[^\\w\\s]).{8,}$', {
    area: A.auth,
    allowed: 'a JavaScript regular expression',
    validate: regexValidator,
    description: 'The pattern a new password must match when ENABLE_PASSWORD_VALIDATION=true.',
  }),
  PASSWORD_VALIDATION_HINT: text('', {
    area: A.auth,
    description: 'Text shown to users (and returned in the error) when a password does not match the pattern.',
  }),
  PASSWORD_HASH_ROUNDS: requiredInt(
    12,
    { min: 4, max: 15 },
    {
      area: A.auth,
      description:
        'bcrypt cost factor for new password hashes. Values below 10 log a warning and are meant for tests only.',
    },
  ),
  HRIDAAI_ADMIN_EMAIL: text(null, {
    area: A.auth,
    allowed: 'an e-mail address',
    validate: (v) => (/^[^@\s]+@[^@\s]+$/.test(v) ? undefined : 'must be an e-mail address'),
    normalise: (v) => v.toLowerCase(),
    description:
      'With HRIDAAI_ADMIN_PASSWORD: creates this admin account at start, only when no users exist. Sign-up is then closed.',
  }),
  HRIDAAI_ADMIN_PASSWORD: text(null, {
    area: A.auth,
    secret: true,
    allowed: 'a password (the password rules apply; at most 72 bytes)',
    description: 'Password of the admin created from HRIDAAI_ADMIN_EMAIL.',
  }),
  HRIDAAI_ADMIN_NAME: text('Admin', {
    area: A.auth,
    description: 'Display name of the admin created from HRIDAAI_ADMIN_EMAIL.',
  }),
  ENABLE_LOGIN_FORM: bool(true, {
    area: A.auth,
    description:
      '`false` hides the e-mail/password form in the UI **and** refuses local sign-up at the API (SSO-only deployments).',
  }),
  ENABLE_PASSWORD_AUTH: bool(true, {
    area: A.auth,
    description: '`false` refuses password sign-in, password sign-up and password change at the API.',
  }),
  ENABLE_PASSWORD_CHANGE_FORM: bool(true, {
    area: A.auth,
    description:
      '`false` hides the password change form **and** refuses `POST /api/v1/auths/update/password` at the API.',
  }),

  // ---- Sessions and cookies
  JWT_EXPIRES_IN: custom<number | null>(
    '4w',
    '-1 (no expiry) or a duration: ms, s, m, h, d, w (e.g. 24h, 1h30m)',
    {
      area: A.cookies,
      description:
        'Lifetime of a session token. `-1` disables expiry (a warning is logged); such tokens are still revocable because every token belongs to a session row.',
    },
    (raw) => (raw === undefined || raw.trim() === '' ? parseDuration('4w') : parseDuration(raw)),
  ),
  HRIDAAI_SESSION_COOKIE_SECURE: bool(false, {
    area: A.cookies,
    description: '`true` marks cookies Secure (sent over HTTPS only). Set it when serving over HTTPS.',
  }),
  HRIDAAI_SESSION_COOKIE_SAME_SITE: oneOf(['lax', 'strict', 'none'] as const, 'lax', {
    area: A.cookies,
    description: 'SameSite attribute of cookies. `strict` offers the most protection; `none` requires Secure.',
  }),
  HRIDAAI_AUTH_COOKIE_SECURE: custom<boolean | null>(
    null,
    'true, false (unset: HRIDAAI_SESSION_COOKIE_SECURE)',
    { area: A.cookies, description: 'Overrides HRIDAAI_SESSION_COOKIE_SECURE for the auth (`token`) cookie.' },
    (raw) => (raw === undefined || raw.trim() === '' ? null : bool(false, { area: '', description: '' }).parse(raw)),
  ),
  HRIDAAI_AUTH_COOKIE_SAME_SITE: custom<'lax' | 'strict' | 'none' | null>(
    null,
    'lax, strict, none (unset: HRIDAAI_SESSION_COOKIE_SAME_SITE)',
    { area: A.cookies, description: 'Overrides HRIDAAI_SESSION_COOKIE_SAME_SITE for the auth (`token`) cookie.' },
    (raw) =>
      raw === undefined || raw.trim() === ''
        ? null
        : oneOf(['lax', 'strict', 'none'] as const, 'lax', { area: '', description: '' }).parse(raw),
  ),
  SESSION_CACHE_TTL_MS: requiredInt(
    1000,
    { min: 0, max: 60_000 },
    {
      area: A.cookies,
      description:
        'How long an instance may reuse a session check before asking the database again. Revocations on the same instance (and, with Redis, on every instance) take effect at once; without Redis other instances see them within this time. `0` checks the database on every request.',
    },
  ),

  // ---- HTTP hardening
  CORS_ALLOW_ORIGIN: text('*', {
    area: A.http,
    allowed: '`*` or a `;` list of origins',
    description:
      'Origins allowed to call the API from a browser. `*` (default; a warning is logged) answers any origin **without** credentials. Listed origins get credentialed CORS. An arbitrary origin is never reflected and `null` is never allowed.',
  }),
  CORS_ALLOW_CUSTOM_SCHEME: text('', {
    area: A.http,
    allowed: 'a comma list of URL schemes (e.g. `app`)',
    validate: (v) =>
      v.split(',').every((s) => /^[a-z][a-z0-9+.-]*$/i.test(s.trim()))
        ? undefined
        : 'must be a comma list of URL schemes such as app',
    description: 'Extra URL schemes allowed in CORS_ALLOW_ORIGIN, for desktop apps (e.g. `app://…`).',
  }),
  HSTS: text(null, {
    area: A.http,
    allowed: 'max-age=<seconds>[; includeSubDomains][; preload]',
    validate: validateHsts,
    normalise: normaliseHsts,
    description: 'Strict-Transport-Security header. Not sent when unset.',
  }),
  XFRAME_OPTIONS: custom<'DENY' | 'SAMEORIGIN' | null>(
    null,
    'DENY, SAMEORIGIN',
    { area: A.http, description: 'X-Frame-Options header. Not sent when unset.' },
    (raw) => {
      if (raw === undefined || raw.trim() === '') return null;
      const v = raw.trim().toUpperCase();
      if (v !== 'DENY' && v !== 'SAMEORIGIN') throw `must be DENY or SAMEORIGIN (got "${raw}")`;
      return v;
    },
  ),
  XCONTENT_TYPE: custom<'nosniff' | null>(
    null,
    'nosniff',
    { area: A.http, description: 'X-Content-Type-Options header. Not sent when unset.' },
    (raw) => {
      if (raw === undefined || raw.trim() === '') return null;
      if (raw.trim().toLowerCase() !== 'nosniff') throw `must be nosniff (got "${raw}")`;
      return 'nosniff';
    },
  ),
  REFERRER_POLICY: text(null, {
    area: A.http,
    allowed: referrerPolicyAllowed,
    validate: validateReferrerPolicy,
    description: 'Referrer-Policy header. Not sent when unset.',
  }),
  PERMISSIONS_POLICY: text(null, {
    area: A.http,
    allowed: 'comma list of feature=(allowlist), e.g. camera=(),microphone=()',
    validate: validatePermissionsPolicy,
    description: 'Permissions-Policy header. Not sent when unset.',
  }),
  CONTENT_SECURITY_POLICY: text(null, {
    area: A.http,
    allowed: 'a CSP: directives separated by `;`',
    validate: validateCsp,
    description:
      "Content-Security-Policy header. Not sent when unset. The bundled UI works under `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'`.",
  }),
  CONTENT_SECURITY_POLICY_REPORT_ONLY: text(null, {
    area: A.http,
    allowed: 'a CSP: directives separated by `;`',
    validate: validateCsp,
    description:
      'Content-Security-Policy-Report-Only header (reports violations without enforcing). Not sent when unset.',
  }),
  CROSS_ORIGIN_EMBEDDER_POLICY: custom<string | null>(
    null,
    'unsafe-none, require-corp, credentialless',
    { area: A.http, description: 'Cross-Origin-Embedder-Policy header. Not sent when unset.' },
    (raw) =>
      raw === undefined || raw.trim() === ''
        ? null
        : oneOf(['unsafe-none', 'require-corp', 'credentialless'] as const, 'unsafe-none', {
            area: '',
            description: '',
          }).parse(raw),
  ),
  CROSS_ORIGIN_OPENER_POLICY: custom<string | null>(
    null,
    'unsafe-none, same-origin-allow-popups, same-origin, noopener-allow-popups',
    { area: A.http, description: 'Cross-Origin-Opener-Policy header. Not sent when unset.' },
    (raw) =>
      raw === undefined || raw.trim() === ''
        ? null
        : oneOf(
            ['unsafe-none', 'same-origin-allow-popups', 'same-origin', 'noopener-allow-popups'] as const,
            'unsafe-none',
            {
              area: '',
              description: '',
            },
          ).parse(raw),
  ),
  CROSS_ORIGIN_RESOURCE_POLICY: custom<string | null>(
    null,
    'same-site, same-origin, cross-origin',
    { area: A.http, description: 'Cross-Origin-Resource-Policy header. Not sent when unset.' },
    (raw) =>
      raw === undefined || raw.trim() === ''
        ? null
        : oneOf(['same-site', 'same-origin', 'cross-origin'] as const, 'same-origin', {
            area: '',
            description: '',
          }).parse(raw),
  ),
  REPORTING_ENDPOINTS: text(null, {
    area: A.http,
    allowed: 'comma list of name="url"',
    validate: validateReportingEndpoints,
    description: 'Reporting-Endpoints header (targets for CSP `report-to`). Not sent when unset.',
  }),
  FORWARDED_ALLOW_IPS: custom<'*' | string[]>(
    '*',
    '`*` or a comma list of IP addresses and CIDR ranges',
    {
      area: A.http,
      description:
        'Peers trusted to send X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host. The client IP used by logs, rate limits and audit is taken from X-Forwarded-For only when the direct peer is listed; otherwise it is the peer address. `*` (default, as the guide documents) trusts every peer — restrict it to your proxy.',
    },
    (raw) => (raw === undefined || raw.trim() === '' ? '*' : parseForwardedAllowIps(raw)),
  ),
  MAX_JSON_BODY_SIZE: requiredInt(
    1_048_576,
    { min: 1024, max: 104_857_600 },
    {
      area: A.http,
      description:
        'Default limit in bytes for JSON request bodies; larger bodies get 413. Some routes set a smaller limit of their own.',
    },
  ),

  // ---- Database
  DATABASE_URL: text(null, {
    area: A.db,
    secret: true,
    allowed: '`sqlite:///<path>`, `sqlite+sqlcipher:///<path>` or `postgresql://user:password@host:port/db`',
    validate: (v) =>
      /^(sqlite(\+sqlcipher)?:\/\/\/.+|postgres(ql)?:\/\/.+)$/i.test(v)
        ? undefined
        : 'must be sqlite:///<path>, sqlite+sqlcipher:///<path> or postgresql://user:password@host:port/database',
    description:
      'Database location. Unset: SQLite at `<DATA_DIR>/hridaai.db` (WAL mode). `sqlite+sqlcipher:///<path>` is an encrypted SQLite file (same as DATABASE_TYPE=sqlite+sqlcipher).',
  }),
  DATABASE_TYPE: custom<'sqlite' | 'postgresql' | 'sqlite+sqlcipher' | null>(
    null,
    'sqlite, postgresql, sqlite+sqlcipher (unset: taken from DATABASE_URL)',
    {
      area: A.db,
      description:
        'Database engine. Normally inferred from DATABASE_URL. `sqlite+sqlcipher`: SQLite encrypted at rest with SQLCipher 4 (the database file and its WAL), keyed by DATABASE_PASSWORD. An existing unencrypted database is refused, never written in plaintext: convert it with `hrida-ai db encrypt` (docs/deployment.md).',
    },
    (raw) => {
      if (raw === undefined || raw.trim() === '') return null;
      const v = raw.trim().toLowerCase();
      if (v === 'postgres') return 'postgresql';
      if (v === 'sqlite' || v === 'postgresql' || v === 'sqlite+sqlcipher') return v;
      throw `must be sqlite, postgresql or sqlite+sqlcipher (got "${raw}")`;
    },
  ),
  DATABASE_PASSWORD: text(null, {
    area: A.db,
    secret: true,
    allowed: 'a passphrase (generate with `openssl rand -base64 32`); required with sqlite+sqlcipher',
    description:
      'Encrypted SQLite only: the passphrase the database file is encrypted with (SQLCipher 4, key derived with PBKDF2-HMAC-SHA512). Required when DATABASE_TYPE is sqlite+sqlcipher, refused otherwise. A wrong passphrase stops the server at start. Losing it loses the data: keep it outside DATA_DIR and outside backups of the database.',
  }),
  DATABASE_POOL_SIZE: requiredInt(
    10,
    { min: 1, max: 1000 },
    { area: A.db, description: 'PostgreSQL: connections kept in the pool (pg `Pool.max` = size + overflow).' },
  ),
  DATABASE_POOL_MAX_OVERFLOW: requiredInt(
    0,
    { min: 0, max: 1000 },
    { area: A.db, description: 'PostgreSQL: extra connections allowed above DATABASE_POOL_SIZE under load.' },
  ),
  DATABASE_POOL_TIMEOUT: requiredInt(
    30,
    { min: 1, max: 3600 },
    {
      area: A.db,
      description: 'PostgreSQL: seconds to wait for a free connection before the request fails (503).',
    },
  ),
  DATABASE_POOL_RECYCLE: requiredInt(
    3600,
    { min: 0, max: 86_400 },
    {
      area: A.db,
      description: 'PostgreSQL: seconds after which a connection is closed and replaced (`0` = never).',
    },
  ),

  // ---- Redis
  REDIS_URL: text(null, {
    area: A.redis,
    secret: true,
    allowed: 'redis://[user:password@]host:port[/db] or rediss://…',
    validate: (v) => (/^rediss?:\/\/.+/i.test(v) ? undefined : 'must be a redis:// or rediss:// URL'),
    description:
      'Optional. Shares session revocations between instances (they agree within a second) and, in later features, rate limits. Without Redis every revocation still works: the database is the source of truth.',
  }),
  REDIS_KEY_PREFIX: text('hridaai:', {
    area: A.redis,
    allowed: 'text',
    description: 'Prefix of every Redis key and channel HridaAI uses (lets several deployments share one Redis).',
  }),

  // ---- Logging
  LOG_FORMAT: oneOf(['text', 'json'] as const, 'text', {
    area: A.log,
    description:
      '`json` writes one JSON object per line to standard output for log aggregators; `text` is for humans. With `json`, the per-request access lines (`"msg":"request"`) are written in batches of at least 4 KiB, and at least every 500 ms, for speed; every other line is written at once (after the batched ones, so the order is kept), and everything is flushed at exit.',
  }),
  GLOBAL_LOG_LEVEL: oneOf(['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const, 'INFO', {
    area: A.log,
    aliases: { warn: 'WARNING', fatal: 'CRITICAL', trace: 'DEBUG' },
    description: 'Minimum level written. Passwords, tokens, cookies and keys are redacted from logs at every level.',
  }),
} satisfies Record<string, SettingDef<unknown>>;

/** Every setting, in docs order. Add an area with one spread line. */
export const settings = {
  ...coreSettings,
  ...auditSettings,
  ...accessSettings,
  ...gatewaySettings,
  ...netSettings,
  ...filesSettings,
  ...chatsSettings,
  ...observabilitySettings,
  ...accountSecuritySettings,
  ...ssoSettings,
  ...codeSettings,
} satisfies Record<string, SettingDef<unknown>>;

export type SettingName = keyof typeof settings;
export type RawConfig = { [K in SettingName]: ReturnType<(typeof settings)[K]['parse']> };

export { parseCorsOrigins };
