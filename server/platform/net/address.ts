import ipaddr from 'ipaddr.js';

/**
 * Address classification for outbound requests. The default is deny: an address is `public` only
 * when ipaddr.js calls it plain unicast **and** (for IPv6) it lies in global unicast 2000::/3.
 * Forms that carry an IPv4 address inside IPv6 (mapped, compatible, NAT64, 6to4, Teredo) are judged
 * by what they carry as well as by what they are.
 */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'unique_local'
  | 'reserved'
  | 'multicast'
  | 'broadcast'
  | 'unspecified'
  | 'metadata'
  | 'invalid';

export interface Classified {
  /** Canonical text of the address (IPv4-mapped IPv6 becomes IPv4). */
  address: string;
  family: 4 | 6;
  class: AddressClass;
  /** IPv4 addresses carried inside an IPv6 form, canonical. */
  embedded: string[];
}

/** Cloud metadata endpoints: refused always, whatever the settings. */
const METADATA_CIDRS = [
  '169.254.169.254/32', // AWS, GCP, Azure, OCI, DigitalOcean …
  '169.254.170.2/32', // AWS ECS task metadata
  '169.254.170.23/32', // AWS EKS pod identity
  '100.100.100.200/32', // Alibaba Cloud
  '168.63.129.16/32', // Azure WireServer
  '192.0.0.192/32', // Oracle Cloud (legacy)
  'fd00:ec2::/32', // AWS IMDS over IPv6 (fd00:ec2::254, fd00:ec2::23)
].map((c) => ipaddr.parseCIDR(c));

/** Host names of metadata services (and their subdomains): refused always. */
export const METADATA_NAMES = [
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'metadata.azure.com',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
];

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

function isMetadata(a: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return METADATA_CIDRS.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));
}

function v4FromBytes(b: number[]): ipaddr.IPv4 {
  return new ipaddr.IPv4(b.slice(0, 4));
}

/** IPv4 addresses that an IPv6 address carries (the forms a translator or tunnel would reach). */
function embeddedV4(a: ipaddr.IPv6): ipaddr.IPv4[] {
  const bytes = a.toByteArray();
  const range = a.range();
  const out: ipaddr.IPv4[] = [];
  if (range === 'ipv4Mapped' || range === 'rfc6145' || range === 'rfc6052') out.push(v4FromBytes(bytes.slice(12)));
  else if (range === '6to4') out.push(v4FromBytes(bytes.slice(2, 6)));
  else if (range === 'teredo') {
    out.push(v4FromBytes(bytes.slice(4, 8))); // server
    out.push(v4FromBytes(bytes.slice(12).map((x) => x ^ 0xff))); // client (obfuscated)
  } else if (bytes.slice(0, 12).every((x) => x === 0) && !(bytes[12] === 0 && bytes[13] === 0 && bytes[14] === 0)) {
    // IPv4-compatible ::a.b.c.d (deprecated; Linux does not route it, but a translator might).
    out.push(v4FromBytes(bytes.slice(12)));
  }
  return out;
}

function classV4(a: ipaddr.IPv4): AddressClass {
  if (isMetadata(a)) return 'metadata';
  switch (a.range()) {
    case 'unicast':
      return 'public';
    case 'loopback':
      return 'loopback';
    case 'private':
      return 'private';
    case 'linkLocal':
      return 'link_local';
    case 'carrierGradeNat':
      return 'cgnat';
    case 'multicast':
      return 'multicast';
    case 'broadcast':
      return 'broadcast';
    case 'unspecified':
      return 'unspecified';
    default:
      return 'reserved';
  }
}

const SEVERITY: AddressClass[] = [
  'invalid',
  'metadata',
  'unspecified',
  'broadcast',
  'multicast',
  'loopback',
  'link_local',
  'private',
  'unique_local',
  'cgnat',
  'reserved',
  'public',
];

function worst(a: AddressClass, b: AddressClass): AddressClass {
  return SEVERITY.indexOf(a) <= SEVERITY.indexOf(b) ? a : b;
}

/**
 * Parses an address as a resolver or a URL host gives it. Brackets are removed. Zone ids
 * (`fe80::1%eth0`) and anything that is not a canonical IPv4 dotted quad or an IPv6 address are
 * refused: the WHATWG URL parser already turned every legacy IPv4 spelling into a dotted quad.
 */
export function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (s.includes('%')) return null;
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return ipaddr.IPv4.parse(s);
  // ipaddr.js reads `::a.b.c.d` as IPv4-mapped; the OS (and the URL parser) read it as
  // IPv4-compatible. Rewrite a trailing dotted quad as two hex groups so both agree.
  const dotted = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(s);
  let v6text = s;
  if (dotted) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(dotted[2]!)) return null;
    const [a, b, c, d] = ipaddr.IPv4.parse(dotted[2]!).octets as [number, number, number, number];
    v6text = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  if (ipaddr.IPv6.isValid(v6text)) {
    const a = ipaddr.IPv6.parse(v6text);
    if (a.zoneId) return null;
    return a;
  }
  return null;
}

export function classifyAddress(text: string): Classified {
  const parsed = parseAddress(text);
  if (!parsed) return { address: text, family: text.includes(':') ? 6 : 4, class: 'invalid', embedded: [] };
  if (parsed.kind() === 'ipv4') {
    const v4 = parsed as ipaddr.IPv4;
    return { address: v4.toString(), family: 4, class: classV4(v4), embedded: [] };
  }
  const v6 = parsed as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) {
    const v4 = v6.toIPv4Address();
    return { address: v4.toString(), family: 4, class: classV4(v4), embedded: [] };
  }
  const carried = embeddedV4(v6);
  let cls: AddressClass;
  if (isMetadata(v6)) cls = 'metadata';
  else {
    switch (v6.range() as string) {
      case 'unicast':
        cls = v6.match(GLOBAL_UNICAST_V6) ? 'public' : 'reserved';
        break;
      case 'loopback':
        cls = 'loopback';
        break;
      case 'linkLocal':
        cls = 'link_local';
        break;
      case 'uniqueLocal':
        cls = 'unique_local';
        break;
      case 'deprecatedSiteLocal':
        cls = 'private';
        break;
      case 'multicast':
        cls = 'multicast';
        break;
      case 'unspecified':
        cls = 'unspecified';
        break;
      default:
        cls = 'reserved';
    }
  }
  // A translated form is never public, and it is at least as bad as what it carries.
  for (const e of carried) cls = worst(worst(cls, 'reserved'), classV4(e));
  return { address: v6.toString(), family: 6, class: cls, embedded: carried.map((e) => e.toString()) };
}

export function isPublicAddress(text: string): boolean {
  return classifyAddress(text).class === 'public';
}

/** Same address in any textual form (IPv4-mapped IPv6 equals its IPv4). */
export function sameAddress(a: string | undefined, b: string): boolean {
  if (!a) return false;
  const pa = parseAddress(a);
  const pb = parseAddress(b);
  if (!pa || !pb) return false;
  const na =
    pa.kind() === 'ipv6' && (pa as ipaddr.IPv6).isIPv4MappedAddress() ? (pa as ipaddr.IPv6).toIPv4Address() : pa;
  const nb =
    pb.kind() === 'ipv6' && (pb as ipaddr.IPv6).isIPv4MappedAddress() ? (pb as ipaddr.IPv6).toIPv4Address() : pb;
  return na.kind() === nb.kind() && na.toNormalizedString() === nb.toNormalizedString();
}
