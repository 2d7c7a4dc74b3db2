import { bool, custom, int, requiredInt, text, type SettingDef } from '../types.js';

const OIDC = 'Single sign-on (OAuth / OpenID Connect)';
const HEADER = 'Trusted-header authentication';
const LDAP = 'LDAP';
const SCIM = 'SCIM provisioning';

const LOOPBACK_HOST = /^(127(\.\d{1,3}){3}|\[::1\]|localhost)$/i;

/** An http(s) URL; plain http only for a loopback host (credentials never cross a network in clear). */
export function validateIdpUrl(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be an absolute https:// URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'must be an https:// URL';
  if (u.protocol === 'http:' && !LOOPBACK_HOST.test(u.hostname))
    return 'must use https:// (plain http is accepted only for a loopback host such as 127.0.0.1)';
  if (u.username || u.password) return 'must not contain a user name or password';
  if (u.hash) return 'must not contain a #fragment';
  return undefined;
}

function validateRedirectUri(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be an absolute URL such as https://hrida.example.com/oauth/oidc/callback';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'must be an http(s) URL';
  if (u.hash) return 'must not contain a #fragment';
  if (u.search) return 'must not contain a query string';
  return undefined;
}

/** Comma (or space) separated list, trimmed, empty entries dropped. */
export function parseList(raw: string | undefined, def = ''): string[] {
  const v = raw === undefined || raw.trim() === '' ? def : raw;
  return v
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function list(def: string, meta: { area: string; description: string; allowed?: string }): SettingDef<string[]> {
  return custom<string[]>(
    def,
    meta.allowed ?? 'a comma list',
    { area: meta.area, description: meta.description },
    (raw) => parseList(raw, def),
  );
}

/** A `;` list (entries may contain commas and spaces, like LDAP DNs). */
function dnList(meta: { area: string; description: string }): SettingDef<string[]> {
  return custom<string[]>(
    '',
    'a `;` list of group DNs (cn=admins,ou=groups,dc=example,dc=com) or group names (admins)',
    meta,
    (raw) =>
      (raw ?? '')
        .split(';')
        .map((x) => x.trim())
        .filter((x) => x !== ''),
  );
}

/** One OAUTH_BLOCKED_GROUPS entry: exact name (case-insensitive), glob (`*`, `?`) or `/regex/flags`. */
export interface GroupMatcher {
  raw: string;
  test(group: string): boolean;
}

export function groupMatcher(entry: string): GroupMatcher {
  const re = /^\/(.+)\/([a-z]*)$/s.exec(entry);
  if (re) {
    const flags = re[2]!;
    if (/[^imsu]/.test(flags)) throw `"${entry}": only the regex flags i, m, s and u are allowed`;
    let r: RegExp;
    try {
      r = new RegExp(re[1]!, flags);
    } catch (e) {
      throw `"${entry}" is not a valid regular expression: ${(e as Error).message}`;
    }
    return { raw: entry, test: (g) => r.test(g) };
  }
  if (/[*?]/.test(entry)) {
    const src = entry
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
      .join('');
    const r = new RegExp(`^${src}$`, 'is');
    return { raw: entry, test: (g) => r.test(g) };
  }
  const lower = entry.toLowerCase();
  return { raw: entry, test: (g) => g.toLowerCase() === lower };
}

export function parseBlockedGroups(raw: string | undefined): GroupMatcher[] {
  if (raw === undefined || raw.trim() === '') return [];
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw 'must be a JSON list of strings, e.g. ["contractors-external", "temp-*", "/^ext-.*$/i"]';
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.trim() === ''))
    throw 'must be a JSON list of non-empty strings, e.g. ["contractors-external", "temp-*"]';
  return (v as string[]).map((s) => groupMatcher(s.trim()));
}

function headerName(def: null, meta: { area: string; description: string }) {
  return text(def, {
    ...meta,
    allowed: 'an HTTP header name, e.g. X-Forwarded-Email',
    validate: (v) => (/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v) ? undefined : 'must be an HTTP header name'),
    normalise: (v) => v.toLowerCase(),
  });
}

function secretFile(meta: { area: string; description: string }) {
  return text(null, { ...meta, allowed: 'a file path (a trailing newline is ignored)' });
}

export const ssoSettings = {
  // ---- Generic OpenID Connect provider
  OAUTH_CLIENT_ID: text(null, {
    area: OIDC,
    description:
      'Client id of HridaAI at the generic OpenID Connect provider. With OPENID_PROVIDER_URL (and usually OAUTH_CLIENT_SECRET) it enables the "oidc" provider: `GET /oauth/oidc/login`.',
  }),
  OAUTH_CLIENT_SECRET: text(null, {
    area: OIDC,
    secret: true,
    description: 'Client secret of HridaAI at the generic OpenID Connect provider.',
  }),
  OPENID_PROVIDER_URL: text(null, {
    area: OIDC,
    allowed: 'https:// issuer URL, or its `/.well-known/openid-configuration` URL',
    validate: validateIdpUrl,
    description:
      'The provider (issuer) URL. Its discovery document is fetched through the outbound client at the first sign-in (private addresses allowed because an admin configured it; metadata endpoints refused; redirects never followed) and the `issuer` it names must equal this URL. Plain http is refused except for a loopback host.',
  }),
  OPENID_REDIRECT_URI: text(null, {
    area: OIDC,
    allowed: 'absolute URL ending in /oauth/oidc/callback',
    validate: validateRedirectUri,
    description:
      'Redirect URI registered at the provider. Unset: derived from the request (`<scheme>://<host>/oauth/oidc/callback`, scheme and host from X-Forwarded-* only from FORWARDED_ALLOW_IPS peers). Set it when HridaAI sits behind a proxy that rewrites the host.',
  }),
  OAUTH_PROVIDER_NAME: text('SSO', {
    area: OIDC,
    description: 'Name shown on the sign-in button of the generic provider.',
  }),
  OAUTH_SCOPES: text('openid email profile', {
    area: OIDC,
    allowed: 'space-separated scopes (must include openid)',
    validate: (v) => (v.split(/\s+/).includes('openid') ? undefined : 'must include the openid scope'),
    description:
      'Scopes requested from the generic provider. Add the scope that releases your groups or roles claim if the provider needs one.',
  }),
  OAUTH_TOKEN_ENDPOINT_AUTH_METHOD: custom<'client_secret_basic' | 'client_secret_post'>(
    'client_secret_basic',
    'client_secret_basic, client_secret_post',
    { area: OIDC, description: 'How HridaAI authenticates to the token endpoint of the generic provider.' },
    (raw) => {
      if (raw === undefined || raw.trim() === '') return 'client_secret_basic';
      const v = raw.trim().toLowerCase();
      if (v !== 'client_secret_basic' && v !== 'client_secret_post')
        throw `must be client_secret_basic or client_secret_post (got "${raw}")`;
      return v;
    },
  ),
  ENABLE_OAUTH_SIGNUP: bool(false, {
    area: OIDC,
    description:
      '`true` creates an account (role DEFAULT_USER_ROLE, or from role management) on the first sign-in of someone the provider vouches for. `false` lets in only people who already have an account linked to that provider (the very first account of a fresh install is still created and becomes admin).',
  }),
  OAUTH_EMAIL_CLAIM: text('email', {
    area: OIDC,
    allowed: 'a claim name or dotted path',
    description: 'Claim holding the e-mail address (ID token, then userinfo).',
  }),
  OAUTH_USERNAME_CLAIM: text('name', {
    area: OIDC,
    allowed: 'a claim name or dotted path',
    description: 'Claim holding the display name.',
  }),
  OAUTH_PICTURE_CLAIM: text('picture', {
    area: OIDC,
    allowed: 'a claim name or dotted path; empty to ignore pictures',
    description:
      'Claim holding the profile picture URL. Only https URLs are kept (at most 2048 characters); anything else is ignored.',
  }),
  OAUTH_GROUPS_CLAIM: text('groups', {
    area: OIDC,
    allowed: 'a claim name or dotted path (e.g. realm_access.roles)',
    description:
      'Claim holding the list of group names, used by OAUTH_BLOCKED_GROUPS and ENABLE_OAUTH_GROUP_MANAGEMENT.',
  }),
  ENABLE_OAUTH_GROUP_MANAGEMENT: bool(false, {
    area: OIDC,
    description:
      'At every sign-in, make the user a member of the existing HridaAI groups named in OAUTH_GROUPS_CLAIM and remove the memberships that an earlier sign-in with the same provider added and the claim no longer lists. Memberships added by an admin, by SCIM or by another provider are never touched.',
  }),
  ENABLE_OAUTH_GROUP_CREATION: bool(false, {
    area: OIDC,
    description:
      'With ENABLE_OAUTH_GROUP_MANAGEMENT: also create the groups from the claim that do not exist yet (no permissions; an admin grants them).',
  }),
  OAUTH_ALLOWED_DOMAINS: list('*', {
    area: OIDC,
    allowed: '`*` or a comma list of e-mail domains',
    description:
      'Only e-mail addresses whose domain (the part after the last `@`) is exactly one of these may sign in with any OAuth provider; subdomains must be listed. `*` allows every domain.',
  }),
  OAUTH_BLOCKED_GROUPS: custom<GroupMatcher[]>(
    '[]',
    'JSON list of group names, globs (`temp-*`) or regexes (`/^ext-/i`)',
    {
      area: OIDC,
      description:
        'A sign-in whose groups claim contains a matching group is **refused** (and audited), whatever ENABLE_OAUTH_GROUP_MANAGEMENT says. Names compare case-insensitively.',
    },
    parseBlockedGroups,
  ),
  ENABLE_OAUTH_ROLE_MANAGEMENT: bool(false, {
    area: OIDC,
    description:
      'Take the HridaAI role from OAUTH_ROLES_CLAIM at **every** sign-in: a role in OAUTH_ADMIN_ROLES → admin, else a role in OAUTH_ALLOWED_ROLES → user, else the sign-in is refused. When the claim is missing altogether the sign-in is refused and the account is left unchanged (never silently promoted or demoted). A change of role revokes the user’s other sessions.',
  }),
  OAUTH_ROLES_CLAIM: text('roles', {
    area: OIDC,
    allowed: 'a claim name or dotted path (e.g. realm_access.roles)',
    description: 'Claim holding the list of roles (a list, or a string of space- or comma-separated roles).',
  }),
  OAUTH_ADMIN_ROLES: list('admin', {
    area: OIDC,
    description: 'IdP roles that make the user an admin (ENABLE_OAUTH_ROLE_MANAGEMENT).',
  }),
  OAUTH_ALLOWED_ROLES: list('user,admin', {
    area: OIDC,
    description: 'IdP roles allowed to sign in as a user (ENABLE_OAUTH_ROLE_MANAGEMENT).',
  }),
  OAUTH_MERGE_ACCOUNTS_BY_EMAIL: bool(false, {
    area: OIDC,
    description:
      'When `true`, a first OAuth sign-in whose e-mail matches an existing account is linked to it — **only** if the provider asserts `email_verified: true`. Not recommended: it is only as safe as the provider’s e-mail verification. When `false` such a sign-in is refused.',
  }),
  OAUTH_MAX_SESSIONS_PER_USER: requiredInt(
    10,
    { min: 1, max: 1000 },
    {
      area: OIDC,
      description:
        'Concurrent HridaAI sessions a user may hold per OAuth provider; signing in once more revokes the oldest.',
    },
  ),
  ENABLE_OAUTH_BACKCHANNEL_LOGOUT: bool(false, {
    area: OIDC,
    description:
      'Accept OpenID Connect back-channel logout at `POST /oauth/{provider}/backchannel-logout`: a logout token signed by the provider revokes the matching HridaAI sessions (by `sid`, else every session of `sub` with that provider) at once. Works without Redis (the database is the source of truth); with Redis other instances drop their caches at once too.',
  }),

  // ---- Presets
  GOOGLE_CLIENT_ID: text(null, { area: OIDC, description: 'Enables the Google provider (`/oauth/google/login`).' }),
  GOOGLE_CLIENT_SECRET: text(null, { area: OIDC, secret: true, description: 'Client secret for Google.' }),
  GOOGLE_OAUTH_SCOPE: text('openid email profile', { area: OIDC, description: 'Scopes requested from Google.' }),
  GOOGLE_REDIRECT_URI: text(null, {
    area: OIDC,
    validate: validateRedirectUri,
    description: 'Redirect URI registered at Google (unset: derived as for OPENID_REDIRECT_URI).',
  }),
  MICROSOFT_CLIENT_ID: text(null, {
    area: OIDC,
    description:
      'Enables the Microsoft Entra ID provider (`/oauth/microsoft/login`); needs MICROSOFT_CLIENT_TENANT_ID.',
  }),
  MICROSOFT_CLIENT_SECRET: text(null, { area: OIDC, secret: true, description: 'Client secret for Microsoft.' }),
  MICROSOFT_CLIENT_TENANT_ID: text(null, {
    area: OIDC,
    allowed: 'your directory (tenant) id, a GUID',
    validate: (v) =>
      ['common', 'organizations', 'consumers'].includes(v.toLowerCase())
        ? 'must name your own tenant: multi-tenant endpoints (common, organizations, consumers) would let any Microsoft account in'
        : /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)
          ? undefined
          : 'must be the directory (tenant) id, a GUID (Entra admin center → Overview)',
    normalise: (v) => v.toLowerCase(),
    description:
      'The Entra ID tenant. The issuer is `https://login.microsoftonline.com/<tenant>/v2.0` and ID tokens from any other tenant are refused.',
  }),
  MICROSOFT_OAUTH_SCOPE: text('openid email profile', {
    area: OIDC,
    description: 'Scopes requested from Microsoft.',
  }),
  MICROSOFT_REDIRECT_URI: text(null, {
    area: OIDC,
    validate: validateRedirectUri,
    description: 'Redirect URI registered at Microsoft (unset: derived from the request).',
  }),
  GITHUB_CLIENT_ID: text(null, {
    area: OIDC,
    description:
      'Enables GitHub sign-in (`/oauth/github/login`; OAuth 2.0 with PKCE and state — GitHub issues no ID token, so the account is the numeric GitHub user id and the e-mail is the primary **verified** one).',
  }),
  GITHUB_CLIENT_SECRET: text(null, { area: OIDC, secret: true, description: 'Client secret for GitHub.' }),
  GITHUB_CLIENT_SCOPE: text('user:email', { area: OIDC, description: 'Scopes requested from GitHub.' }),
  GITHUB_CLIENT_REDIRECT_URI: text(null, {
    area: OIDC,
    validate: validateRedirectUri,
    description: 'Redirect URI registered at GitHub (unset: derived from the request).',
  }),

  // ---- Trusted header
  HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER: headerName(null, {
    area: HEADER,
    description:
      'Header carrying the e-mail of the user your authenticating proxy signed in. Believed **only** on requests whose direct peer (the TCP address, not X-Forwarded-For) is listed in FORWARDED_ALLOW_IPS, and never while FORWARDED_ALLOW_IPS is `*` (a warning is logged at start). A cookie or token of another user on the same request is refused. The proxy must strip this header from client requests.',
  }),
  HRIDAAI_AUTH_TRUSTED_NAME_HEADER: headerName(null, {
    area: HEADER,
    description: 'Header carrying the display name, used when the account is created.',
  }),
  HRIDAAI_AUTH_TRUSTED_GROUPS_HEADER: headerName(null, {
    area: HEADER,
    description:
      'Header carrying a comma-separated list of group names: the user is made a member of the existing HridaAI groups listed, and memberships that came from this header and are no longer listed are removed (others are never touched).',
  }),

  // ---- LDAP
  ENABLE_LDAP: bool(false, {
    area: LDAP,
    description: 'Sign-in against an LDAP directory at `POST /api/v1/auths/ldap`.',
  }),
  LDAP_SERVER_LABEL: text('LDAP Server', {
    area: LDAP,
    description: 'Name of the directory shown on the sign-in form.',
  }),
  LDAP_SERVER_HOST: text('localhost', {
    area: LDAP,
    allowed: 'a host name or IP address',
    validate: (v) => (/^[A-Za-z0-9.:[\]-]+$/.test(v) ? undefined : 'must be a host name or IP address'),
    description: 'Directory server host. With TLS its certificate must name this host.',
  }),
  LDAP_SERVER_PORT: custom<number | null>(
    '389 (636 when LDAP_USE_TLS=true)',
    'integer 1–65535',
    { area: LDAP, description: 'Directory server port.' },
    (raw) => int(null, { min: 1, max: 65535 }, { area: LDAP, description: '' }).parse(raw),
  ),
  LDAP_USE_TLS: bool(true, {
    area: LDAP,
    description:
      'Connect with LDAPS (TLS from the first byte). Set `false` together with LDAP_USE_STARTTLS=true for StartTLS. With neither, passwords cross the network in clear (a warning is logged at start).',
  }),
  LDAP_USE_STARTTLS: bool(false, {
    area: LDAP,
    description: 'Connect in plain LDAP and upgrade with StartTLS before any bind (requires LDAP_USE_TLS=false).',
  }),
  LDAP_VALIDATE_CERT: bool(true, {
    area: LDAP,
    description:
      'Verify the directory’s certificate (chain to LDAP_CA_CERT_FILE or the system CAs, and host name). `false` is for testing only and logs a warning.',
  }),
  LDAP_CA_CERT_FILE: text(null, {
    area: LDAP,
    allowed: 'path to a PEM file',
    description: 'CA certificate(s) the directory’s certificate must chain to (instead of the system CAs).',
  }),
  LDAP_CIPHERS: text(null, {
    area: LDAP,
    allowed: 'an OpenSSL cipher list',
    description: 'Restricts the TLS cipher suites (unset: Node.js defaults; TLS 1.2 is the minimum version).',
  }),
  LDAP_APP_DN: text(null, {
    area: LDAP,
    description: 'DN of the service account that searches for users (unset: anonymous search).',
  }),
  LDAP_APP_PASSWORD: text(null, { area: LDAP, secret: true, description: 'Password of LDAP_APP_DN.' }),
  LDAP_APP_PASSWORD_FILE: secretFile({
    area: LDAP,
    description:
      'File holding the password of LDAP_APP_DN (Docker/Kubernetes secrets). Exclusive with LDAP_APP_PASSWORD.',
  }),
  LDAP_SEARCH_BASE: text(null, {
    area: LDAP,
    allowed: 'a DN, e.g. ou=people,dc=example,dc=com',
    description: 'Where users are searched (subtree). Required when ENABLE_LDAP=true.',
  }),
  LDAP_ATTRIBUTE_FOR_USERNAME: text('uid', {
    area: LDAP,
    allowed: 'an attribute name',
    validate: (v) => (/^[A-Za-z][A-Za-z0-9-]*$/.test(v) ? undefined : 'must be an attribute name'),
    description:
      'Attribute matched against the user name typed at sign-in (`sAMAccountName` for Active Directory). The typed value is escaped; wildcards and parentheses match literally.',
  }),
  LDAP_ATTRIBUTE_FOR_MAIL: text('mail', {
    area: LDAP,
    allowed: 'an attribute name',
    validate: (v) => (/^[A-Za-z][A-Za-z0-9-]*$/.test(v) ? undefined : 'must be an attribute name'),
    description: 'Attribute holding the e-mail address (required on the entry).',
  }),
  LDAP_ATTRIBUTE_FOR_NAME: text('cn', {
    area: LDAP,
    allowed: 'an attribute name',
    validate: (v) => (/^[A-Za-z][A-Za-z0-9-]*$/.test(v) ? undefined : 'must be an attribute name'),
    description: 'Attribute holding the display name.',
  }),
  LDAP_SEARCH_FILTERS: text('', {
    area: LDAP,
    allowed: 'one or more parenthesised LDAP filters, e.g. (objectClass=person)(!(nsAccountLock=TRUE))',
    description: 'Extra conditions ANDed with the user-name match.',
  }),
  LDAP_TIMEOUT: requiredInt(
    10,
    { min: 1, max: 300 },
    {
      area: LDAP,
      description:
        'Seconds allowed for connecting and for each directory operation; a hung directory fails the sign-in after this time instead of holding it.',
    },
  ),
  ENABLE_LDAP_GROUP_MANAGEMENT: bool(false, {
    area: LDAP,
    description:
      'At every LDAP sign-in, sync the user’s memberships in existing HridaAI groups named like the directory groups in LDAP_ATTRIBUTE_FOR_GROUPS (the group’s `cn`). Only memberships that came from LDAP are removed.',
  }),
  ENABLE_LDAP_GROUP_CREATION: bool(false, {
    area: LDAP,
    description: 'With ENABLE_LDAP_GROUP_MANAGEMENT: create missing groups.',
  }),
  LDAP_ATTRIBUTE_FOR_GROUPS: text('memberOf', {
    area: LDAP,
    allowed: 'an attribute name',
    validate: (v) => (/^[A-Za-z][A-Za-z0-9-]*$/.test(v) ? undefined : 'must be an attribute name'),
    description: 'Attribute of the user entry listing the DNs of its groups.',
  }),
  LDAP_ADMIN_GROUPS: dnList({
    area: LDAP,
    description:
      'When set, the role follows the directory at every LDAP sign-in: members of one of these groups are admins; an admin who is no longer a member becomes a user (the last active admin is never demoted; that is logged and audited). Group membership is read from LDAP_ATTRIBUTE_FOR_GROUPS.',
  }),
  LDAP_ALLOWED_GROUPS: dnList({
    area: LDAP,
    description:
      'When set, only members of one of these groups (or of LDAP_ADMIN_GROUPS) may sign in with LDAP, and they sign in as approved users (not DEFAULT_USER_ROLE).',
  }),

  // ---- SCIM
  ENABLE_SCIM: bool(false, {
    area: SCIM,
    description:
      'SCIM 2.0 provisioning at `/api/v1/scim/v2` (Users, Groups, ServiceProviderConfig, ResourceTypes, Schemas) for Okta, Entra ID and other identity providers. Requires SCIM_TOKEN or SCIM_TOKEN_FILE.',
  }),
  SCIM_TOKEN: text(null, {
    area: SCIM,
    secret: true,
    allowed: 'at least 32 characters (generate with `openssl rand -base64 32`)',
    validate: (v) => (v.length < 32 ? 'must be at least 32 characters (openssl rand -base64 32)' : undefined),
    description:
      'Static bearer token of the SCIM client; grants full user management. Compared in constant time. Exclusive with SCIM_TOKEN_FILE.',
  }),
  SCIM_TOKEN_FILE: secretFile({
    area: SCIM,
    description:
      'File holding the SCIM token(s), one per line. Re-read when it changes (no restart): to rotate, add the new token as a second line, switch the identity provider, then remove the old line.',
  }),
  SCIM_AUTH_PROVIDER: text(null, {
    area: SCIM,
    allowed: 'oidc, google, microsoft, github',
    validate: (v) =>
      ['oidc', 'google', 'microsoft', 'github'].includes(v.toLowerCase())
        ? undefined
        : 'must be oidc, google, microsoft or github',
    normalise: (v) => v.toLowerCase(),
    description:
      'The OAuth provider whose subject the SCIM `externalId` is: a user provisioned with externalId X signs in through that provider as subject X (configure the identity provider to send its user id as externalId). Unset: externalId is stored but links nothing.',
  }),
} satisfies Record<string, SettingDef<unknown>>;
