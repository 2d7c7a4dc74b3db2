import ipaddr from 'ipaddr.js';
import { parseAddress } from './address.js';

/**
 * WEB_FETCH_FILTER_LIST: a comma list of host names, suffixes, IP addresses and CIDR ranges.
 * `!entry` blocks; plain entries turn the list into an allowlist. A name entry `example.com` (or
 * `.example.com`, `*.example.com`) matches the name and every subdomain; address entries match the
 * literal host and every address the name resolves to.
 */
export interface FilterEntry {
  raw: string;
  kind: 'name' | 'cidr';
  name?: string;
  cidr?: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

export interface FilterList {
  allow: FilterEntry[];
  block: FilterEntry[];
}

export const EMPTY_FILTER: FilterList = { allow: [], block: [] };

function normaliseName(v: string): string | null {
  let s = v.toLowerCase().replace(/^\*\./, '').replace(/^\./, '').replace(/\.$/, '');
  if (!s) return null;
  try {
    s = new URL(`http://${s}/`).hostname; // IDN → punycode, same normalisation as request URLs
  } catch {
    return null;
  }
  return /^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(s) ? s : null;
}

function parseEntry(raw: string): FilterEntry {
  const v = raw.trim();
  if (v.includes('/')) {
    const [ip, bits] = v.split('/');
    const a = parseAddress(ip ?? '');
    const n = Number(bits);
    if (!a || !/^\d+$/.test(bits ?? '') || n > (a.kind() === 'ipv4' ? 32 : 128))
      throw `"${raw}" is not a valid CIDR range`;
    return { raw, kind: 'cidr', cidr: ipaddr.parseCIDR(`${a.toString()}/${n}`) };
  }
  const a = parseAddress(v);
  if (a) return { raw, kind: 'cidr', cidr: [a, a.kind() === 'ipv4' ? 32 : 128] };
  const name = normaliseName(v);
  if (!name) throw `"${raw}" is not a host name, IP address or CIDR range`;
  return { raw, kind: 'name', name };
}

/** Parses the setting; throws a message string on a bad entry (the config loader reports it). */
export function parseFilterList(raw: string | null | undefined): FilterList {
  const out: FilterList = { allow: [], block: [] };
  for (const part of (raw ?? '').split(',')) {
    const t = part.trim();
    if (!t) continue;
    if (t.startsWith('!')) out.block.push(parseEntry(t.slice(1)));
    else out.allow.push(parseEntry(t));
  }
  return out;
}

export function nameMatches(entries: FilterEntry[], host: string): FilterEntry | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  return entries.find((e) => e.kind === 'name' && (h === e.name || h.endsWith('.' + e.name)));
}

export function addressMatches(entries: FilterEntry[], address: string): FilterEntry | undefined {
  const a = parseAddress(address);
  if (!a) return undefined;
  const forms: (ipaddr.IPv4 | ipaddr.IPv6)[] = [a];
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) forms.push((a as ipaddr.IPv6).toIPv4Address());
  return entries.find(
    (e) => e.kind === 'cidr' && forms.some((f) => f.kind() === e.cidr![0].kind() && f.match(e.cidr!)),
  );
}
