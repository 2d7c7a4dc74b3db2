import { promises as dns } from 'node:dns';
import { classifyAddress, METADATA_NAMES, parseAddress, type Classified } from './address.js';
import { FetchError, UrlBlockedError } from './errors.js';
import { addressMatches, EMPTY_FILTER, nameMatches, type FilterList } from './filter.js';

/** Resolves a host name to every address (IPv4 and IPv6). Tests inject their own. */
export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) => {
  const rows = await dns.lookup(hostname, { all: true, verbatim: true });
  return rows.map((r) => r.address);
};

export interface PolicyOptions {
  /** Private, loopback, link-local, CGNAT, ULA and reserved ranges are allowed. */
  allowPrivate: boolean;
  /** Public addresses are refused (OFFLINE_MODE). */
  offline: boolean;
  filter: FilterList;
  resolver: Resolver;
  dnsTimeoutMs: number;
}

const CLASS_TEXT: Record<string, string> = {
  loopback: 'a loopback address',
  private: 'a private (RFC 1918) address',
  link_local: 'a link-local address',
  cgnat: 'a carrier-grade NAT address',
  unique_local: 'a unique-local IPv6 address',
  reserved: 'a reserved or translated address',
};

export interface CheckedTarget {
  url: URL;
  host: string;
  addresses: string[];
}

/** Host of a URL without IPv6 brackets and without a trailing dot. */
export function bareHost(hostname: string): string {
  const h = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return h.toLowerCase().replace(/\.$/, '');
}

/**
 * The rules, in one place. `checkUrl` is what can be decided from the URL alone; `checkAddresses`
 * decides on the addresses the host resolved to (or the literal); `resolveAndCheck` does both steps
 * for the socket layer, with a single lookup.
 */
export class UrlPolicy {
  constructor(readonly opts: PolicyOptions) {}

  checkUrl(input: string | URL): URL {
    let url: URL;
    try {
      url = typeof input === 'string' ? new URL(input) : input;
    } catch {
      throw new UrlBlockedError('invalid_url', 'The URL is not valid');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UrlBlockedError(
        'scheme',
        `Only http and https URLs are allowed (got ${url.protocol.replace(':', '')})`,
      );
    if (url.username || url.password)
      throw new UrlBlockedError('credentials_in_url', 'URLs with a user name or password are not allowed');
    const host = bareHost(url.hostname);
    if (!host) throw new UrlBlockedError('invalid_url', 'The URL has no host');
    this.checkName(host);
    return url;
  }

  /** Rules on the name itself (before any lookup). An IP literal is checked as an address. */
  checkName(host: string): void {
    if (parseAddress(host)) {
      this.checkAddresses(host, [host]);
      return;
    }
    if (host.includes('%')) throw new UrlBlockedError('invalid_address', 'Zone ids are not allowed in a host');
    if (METADATA_NAMES.some((n) => host === n || host.endsWith('.' + n)))
      throw new UrlBlockedError('metadata_endpoint', 'Cloud metadata endpoints are always blocked');
    if ((host === 'localhost' || host.endsWith('.localhost')) && !this.opts.allowPrivate)
      throw new UrlBlockedError(
        'private_address',
        'The host is a loopback name; local addresses are blocked (ENABLE_RAG_LOCAL_WEB_FETCH=false)',
      );
    const f = this.opts.filter;
    const blocked = nameMatches(f.block, host);
    if (blocked)
      throw new UrlBlockedError('filter_list', `The host is blocked by WEB_FETCH_FILTER_LIST (!${blocked.raw})`);
  }

  /** Every address must pass; the connection then goes to one of exactly these. */
  checkAddresses(host: string, addresses: string[]): string[] {
    if (addresses.length === 0) throw new FetchError('dns_failed', `The host ${host} did not resolve`);
    const f = this.opts.filter;
    const isLiteral = parseAddress(host) !== null;
    const classified: Classified[] = addresses.map((a) => classifyAddress(a));
    for (const c of classified) {
      if (c.class === 'invalid')
        throw new UrlBlockedError('invalid_address', 'The host resolved to an invalid address');
      if (c.class === 'metadata')
        throw new UrlBlockedError('metadata_endpoint', 'Cloud metadata endpoints are always blocked');
      if (c.class === 'multicast' || c.class === 'broadcast' || c.class === 'unspecified')
        throw new UrlBlockedError(
          'special_address',
          `The host is ${c.class === 'unspecified' ? 'an unspecified' : `a ${c.class}`} address, which is always blocked`,
        );
      if (c.class !== 'public' && !this.opts.allowPrivate)
        throw new UrlBlockedError(
          'private_address',
          `The host ${isLiteral ? 'is' : 'resolves to'} ${CLASS_TEXT[c.class] ?? 'a non-public address'}; local addresses are blocked (ENABLE_RAG_LOCAL_WEB_FETCH=false)`,
        );
      if (c.class === 'public' && this.opts.offline)
        throw new UrlBlockedError('offline_mode', 'OFFLINE_MODE is on: requests to public addresses are refused');
      const forms = [c.address, ...c.embedded];
      const hit = forms.map((a) => addressMatches(f.block, a)).find(Boolean);
      if (hit)
        throw new UrlBlockedError('filter_list', `The address is blocked by WEB_FETCH_FILTER_LIST (!${hit.raw})`);
    }
    if (f.allow.length > 0) {
      const byName = !isLiteral && nameMatches(f.allow, host);
      const byAddress = classified.every((c) => addressMatches(f.allow, c.address));
      if (!byName && !byAddress)
        throw new UrlBlockedError('filter_list', 'The host is not on the WEB_FETCH_FILTER_LIST allowlist');
    }
    return classified.map((c) => c.address);
  }

  async resolve(host: string): Promise<string[]> {
    if (parseAddress(host)) return [host];
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.opts.resolver(host),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new FetchError('dns_failed', `Resolving ${host} timed out`)),
            this.opts.dnsTimeoutMs,
          );
        }),
      ]);
    } catch (e) {
      if (e instanceof FetchError) throw e;
      throw new FetchError('dns_failed', `The host ${host} did not resolve`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Name rules, one lookup, address rules. Returns the checked addresses to connect to. */
  async resolveAndCheck(host: string): Promise<string[]> {
    const h = bareHost(host);
    this.checkName(h);
    return this.checkAddresses(h, await this.resolve(h));
  }

  /** The full check without fetching (the Playwright loader uses it for every request). */
  async check(input: string | URL): Promise<CheckedTarget> {
    const url = this.checkUrl(input);
    const host = bareHost(url.hostname);
    return { url, host, addresses: this.checkAddresses(host, await this.resolve(host)) };
  }
}

export function defaultPolicyOptions(partial: Partial<PolicyOptions>): PolicyOptions {
  return {
    allowPrivate: false,
    offline: false,
    filter: EMPTY_FILTER,
    resolver: systemResolver,
    dnsTimeoutMs: 5000,
    ...(Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<PolicyOptions>),
  };
}
