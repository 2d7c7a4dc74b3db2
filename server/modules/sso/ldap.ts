import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { createRequire } from 'node:module';
import type * as Ldapts from 'ldapts';
import type { Entry, Filter } from 'ldapts';
import type { Config } from '../../config/index.js';
import { AppError } from '../../platform/http/errors.js';

// The LDAP client is loaded at first use (only deployments with ENABLE_LDAP need it).
let ldapLib: typeof Ldapts | null = null;
function ldapts(): typeof Ldapts {
  return (ldapLib ??= createRequire(import.meta.url)('ldapts') as typeof Ldapts);
}

/**
 * LDAP sign-in. The typed user name is matched with an equality filter built as a structure (BER),
 * so `*`, `(`, `)` and `\` in it match literally and can never widen the search; the service
 * account (or an anonymous bind) searches, exactly one entry must match, then a bind with the
 * entry's DN and the typed password proves the password. An empty password is refused before any
 * network traffic (an empty simple bind is an anonymous bind that "succeeds").
 *
 * Transport: LDAPS (LDAP_USE_TLS) or StartTLS (LDAP_USE_STARTTLS) with certificate and host-name
 * verification (LDAP_VALIDATE_CERT) against LDAP_CA_CERT_FILE or the system CAs, TLS 1.2 minimum,
 * LDAP_CIPHERS. Every step — connect, TLS, bind, search — is bounded by LDAP_TIMEOUT, and the
 * whole exchange by a deadline after which the connection is destroyed: a hung directory fails the
 * sign-in with `ldap_unavailable` instead of holding a request.
 *
 * The account is identified by (ldap, entryUUID) — objectGUID on Active Directory, the DN as a last
 * resort — never by the e-mail address.
 */
export interface LdapSettings {
  url: string;
  startTls: boolean;
  tls: ConnectionOptions;
  timeoutMs: number;
  appDn: string | null;
  appPassword: string | null;
  base: string;
  userAttr: string;
  mailAttr: string;
  nameAttr: string;
  groupsAttr: string;
  extraFilter: Filter | null;
}

export interface LdapUser {
  dn: string;
  subject: string;
  email: string | null;
  name: string | null;
  /** DNs from the groups attribute. */
  groups: string[];
}

export function ldapSettings(config: Config, appPassword: string | null): LdapSettings {
  const host = config.LDAP_SERVER_HOST ?? 'localhost';
  const port = config.LDAP_SERVER_PORT ?? (config.LDAP_USE_TLS ? 636 : 389);
  const bracketed = isIP(host) === 6 ? `[${host}]` : host;
  const tls: ConnectionOptions = {
    rejectUnauthorized: config.LDAP_VALIDATE_CERT,
    minVersion: 'TLSv1.2',
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ...(config.LDAP_CA_CERT_FILE ? { ca: readFileSync(config.LDAP_CA_CERT_FILE) } : {}),
    ...(config.LDAP_CIPHERS ? { ciphers: config.LDAP_CIPHERS } : {}),
  };
  let extraFilter: Filter | null = null;
  const extra = (config.LDAP_SEARCH_FILTERS ?? '').trim();
  if (extra) extraFilter = ldapts().FilterParser.parseString(extra.startsWith('(') ? `(&${extra})` : `(&(${extra}))`);
  return {
    url: `${config.LDAP_USE_TLS ? 'ldaps' : 'ldap'}://${bracketed}:${port}`,
    startTls: config.LDAP_USE_STARTTLS,
    tls,
    timeoutMs: config.LDAP_TIMEOUT * 1000,
    appDn: config.LDAP_APP_DN,
    appPassword,
    base: config.LDAP_SEARCH_BASE ?? '',
    userAttr: config.LDAP_ATTRIBUTE_FOR_USERNAME ?? 'uid',
    mailAttr: config.LDAP_ATTRIBUTE_FOR_MAIL ?? 'mail',
    nameAttr: config.LDAP_ATTRIBUTE_FOR_NAME ?? 'cn',
    groupsAttr: config.LDAP_ATTRIBUTE_FOR_GROUPS ?? 'memberOf',
    extraFilter,
  };
}

/** The filter for a typed user name (exposed for tests). */
export function userFilter(s: Pick<LdapSettings, 'userAttr' | 'extraFilter'>, username: string): Filter {
  const { AndFilter, EqualityFilter } = ldapts();
  const eq = new EqualityFilter({ attribute: s.userAttr, value: username });
  return s.extraFilter ? new AndFilter({ filters: [eq, s.extraFilter] }) : eq;
}

function attr(entry: Entry, name: string): Entry[string] | undefined {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : entry[key];
}

function first(v: Entry[string] | undefined): string | null {
  if (v === undefined) return null;
  const x = Array.isArray(v) ? v[0] : v;
  if (x === undefined) return null;
  return Buffer.isBuffer(x) ? x.toString('utf8') : String(x);
}

function all(v: Entry[string] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}

function subjectOf(entry: Entry): string {
  const uuid = first(attr(entry, 'entryUUID'));
  if (uuid) return `entryUUID:${uuid.toLowerCase()}`;
  const guid = attr(entry, 'objectGUID');
  const g = Array.isArray(guid) ? guid[0] : guid;
  if (g !== undefined && Buffer.isBuffer(g) && g.length === 16) return `objectGUID:${g.toString('hex')}`;
  return `dn:${entry.dn.toLowerCase().replace(/\s*,\s*/g, ',')}`;
}

/** The `cn` (first RDN value) of a group DN. */
export function groupName(dn: string): string {
  const m = /^[^=,]+=((?:\\.|[^,\\])+)/.exec(dn.trim());
  return m ? m[1]!.replace(/\\(.)/g, '$1').trim() : dn.trim();
}

/** An entry of LDAP_ADMIN_GROUPS / LDAP_ALLOWED_GROUPS: a DN (compared normalised) or a name. */
export function inGroups(groupDns: readonly string[], wanted: readonly string[]): boolean {
  if (wanted.length === 0) return false;
  const norm = (d: string) =>
    d
      .toLowerCase()
      .replace(/\s*,\s*/g, ',')
      .replace(/\s*=\s*/g, '=');
  const dns = new Set(groupDns.map(norm));
  const names = new Set(groupDns.map((d) => groupName(d).toLowerCase()));
  return wanted.some((w) => (w.includes('=') ? dns.has(norm(w)) : names.has(w.toLowerCase())));
}

function unavailable(e: unknown): AppError {
  return new AppError('ldap_unavailable', 'The directory server did not answer; try again later', {
    cause: String((e as Error)?.message ?? e).slice(0, 200),
  });
}

/**
 * Checks a user name and password against the directory. Throws invalid_credentials (unknown user,
 * ambiguous match, wrong password, empty password) or ldap_unavailable (network, TLS, timeout).
 */
export async function ldapAuthenticate(s: LdapSettings, username: string, password: string): Promise<LdapUser> {
  if (password.length === 0 || username.trim().length === 0)
    throw new AppError('invalid_credentials', 'Incorrect user name or password');
  const { Client, InvalidCredentialsError } = ldapts();
  const client = new Client({
    url: s.url,
    timeout: s.timeoutMs,
    connectTimeout: s.timeoutMs,
    // ldapts opens TLS from the first byte whenever tlsOptions is given: only for LDAPS.
    ...(s.url.startsWith('ldaps:') ? { tlsOptions: s.tls } : {}),
    strictDN: true,
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable(new Error('deadline exceeded'))), s.timeoutMs * 3 + 500);
  });
  const work = async (): Promise<LdapUser> => {
    try {
      if (s.startTls) await client.startTLS({ ...s.tls });
      if (s.appDn)
        await client.bind(s.appDn, s.appPassword ?? '').catch((e: unknown) => {
          // A refused service account is a configuration problem, not the user's wrong password.
          throw unavailable(new Error(`service account bind failed: ${(e as Error).message}`));
        });
      const { searchEntries } = await client.search(s.base, {
        scope: 'sub',
        filter: userFilter(s, username),
        attributes: [s.userAttr, s.mailAttr, s.nameAttr, s.groupsAttr, 'entryUUID', 'objectGUID'],
        explicitBufferAttributes: ['objectGUID'],
        sizeLimit: 2,
        timeLimit: Math.ceil(s.timeoutMs / 1000),
      });
      if (searchEntries.length !== 1) throw new AppError('invalid_credentials', 'Incorrect user name or password');
      const entry = searchEntries[0]!;
      await client.bind(entry.dn, password);
      return {
        dn: entry.dn,
        subject: subjectOf(entry),
        email: first(attr(entry, s.mailAttr)),
        name: first(attr(entry, s.nameAttr)),
        groups: all(attr(entry, s.groupsAttr)),
      };
    } catch (e) {
      if (e instanceof AppError) throw e;
      if (e instanceof InvalidCredentialsError)
        throw new AppError('invalid_credentials', 'Incorrect user name or password');
      const name = (e as Error)?.name ?? '';
      // More than one entry (sizeLimit) is as good as none: never guess which account was meant.
      if (name === 'SizeLimitExceededError')
        throw new AppError('invalid_credentials', 'Incorrect user name or password');
      throw unavailable(e);
    }
  };
  try {
    return await Promise.race([work(), deadline]);
  } finally {
    clearTimeout(timer);
    // unbind() closes the socket when connected; a connection still stuck in connect or TLS is
    // destroyed directly so that a hung directory cannot hold sockets.
    const socket = (client as unknown as { socket?: { destroy(): void } }).socket;
    if (!client.isConnected) socket?.destroy();
    void client.unbind().catch(() => socket?.destroy());
  }
}
