import ipaddr from 'ipaddr.js';

/** Validators for settings whose values have a standard syntax. Each returns a problem or undefined. */

export function validateHsts(v: string): string | undefined {
  const parts = v
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  let maxAge = false;
  const seen = new Set<string>();
  for (const p of parts) {
    const lower = p.toLowerCase();
    if (/^max-age=\d+$/.test(lower) || /^max-age="\d+"$/.test(lower)) {
      maxAge = true;
    } else if (lower !== 'includesubdomains' && lower !== 'preload') {
      return `unknown directive "${p}"; expected max-age=<seconds>, includeSubDomains, preload (e.g. "max-age=31536000; includeSubDomains")`;
    }
    const name = lower.split('=')[0]!;
    if (seen.has(name)) return `directive "${name}" appears twice`;
    seen.add(name);
  }
  if (!maxAge) return 'max-age=<seconds> is required (e.g. "max-age=31536000; includeSubDomains")';
  return undefined;
}

/** Normalises to the canonical spelling browsers expect, keeping the admin's directives and order. */
export function normaliseHsts(v: string): string {
  return v
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      const lower = p.toLowerCase();
      if (lower === 'includesubdomains') return 'includeSubDomains';
      if (lower === 'preload') return 'preload';
      return lower.replace(/"/g, '');
    })
    .join('; ');
}

const REFERRER_TOKENS = [
  'no-referrer',
  'no-referrer-when-downgrade',
  'origin',
  'origin-when-cross-origin',
  'same-origin',
  'strict-origin',
  'strict-origin-when-cross-origin',
  'unsafe-url',
];

export function validateReferrerPolicy(v: string): string | undefined {
  for (const t of v.split(',').map((x) => x.trim())) {
    if (!REFERRER_TOKENS.includes(t.toLowerCase()))
      return `unknown policy "${t}"; allowed: ${REFERRER_TOKENS.join(', ')}`;
  }
  return undefined;
}

export const referrerPolicyAllowed = REFERRER_TOKENS.join(', ') + ' (comma list allowed)';

const PERMISSIONS_ITEM =
  /^[a-z][a-z0-9-]*=(\*|self|\(\s*((self|src|\*|"[^"\s]+")(\s+(self|src|\*|"[^"\s]+"))*)?\s*\))$/i;

export function validatePermissionsPolicy(v: string): string | undefined {
  for (const item of v.split(',').map((x) => x.trim())) {
    if (!PERMISSIONS_ITEM.test(item))
      return `"${item}" is not a valid Permissions-Policy entry; expected feature=(allowlist), e.g. camera=(), geolocation=(self)`;
  }
  return undefined;
}

export function validateCsp(v: string): string | undefined {
  if (v.includes(',')) return 'a comma would start a second policy; write one policy with directives separated by ";"';
  const directives = v
    .split(';')
    .map((d) => d.trim())
    .filter((d) => d !== '');
  if (directives.length === 0) return 'at least one directive is required';
  const seen = new Set<string>();
  for (const d of directives) {
    const name = d.split(/\s+/)[0]!.toLowerCase();
    if (!/^[a-z][a-z0-9-]*$/.test(name)) return `"${d}" does not start with a directive name`;
    if (seen.has(name)) return `directive "${name}" appears twice`;
    seen.add(name);
    if (/[^\x21-\x7e\s]/.test(d)) return `directive "${name}" contains characters not allowed in a header`;
  }
  return undefined;
}

export function validateReportingEndpoints(v: string): string | undefined {
  for (const item of v.split(',').map((x) => x.trim())) {
    const m = /^([a-z][a-z0-9_-]*)\s*=\s*"([^"]+)"$/i.exec(item);
    if (!m) return `"${item}" is not of the form name="https://collector.example/reports"`;
    const url = m[2]!;
    if (!url.startsWith('/')) {
      try {
        const u = new URL(url);
        if (u.protocol !== 'https:' && u.protocol !== 'http:') return `"${url}" must be an http(s) URL or a path`;
      } catch {
        return `"${url}" is not a valid URL`;
      }
    }
  }
  return undefined;
}

/** FORWARDED_ALLOW_IPS: `*` or a comma list of IP addresses and CIDR ranges. */
export function parseForwardedAllowIps(v: string): '*' | string[] {
  const t = v.trim();
  if (t === '*') return '*';
  const out: string[] = [];
  for (const raw of t.split(',').map((x) => x.trim())) {
    if (raw === '') continue;
    if (raw.includes('/')) {
      try {
        ipaddr.parseCIDR(raw);
      } catch {
        throw `"${raw}" is not a valid CIDR range`;
      }
    } else if (!ipaddr.isValid(raw)) {
      throw `"${raw}" is not a valid IP address (use * or a comma list of IPs and CIDR ranges)`;
    }
    out.push(raw);
  }
  if (out.length === 0) throw 'must be * or a comma list of IPs and CIDR ranges';
  return out;
}

/** CORS_ALLOW_ORIGIN: `*` or a `;` list of origins (scheme://host[:port]). */
export function parseCorsOrigins(v: string, customSchemes: string[]): '*' | string[] {
  const t = v.trim();
  if (t === '*') return '*';
  const out: string[] = [];
  for (const raw of t.split(';').map((x) => x.trim())) {
    if (raw === '') continue;
    if (raw === '*') throw '"*" cannot be combined with other origins';
    if (raw.toLowerCase() === 'null') throw '"null" is never an allowed origin';
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw `"${raw}" is not an origin such as https://chat.example.com`;
    }
    const scheme = u.protocol.slice(0, -1).toLowerCase();
    if (scheme !== 'http' && scheme !== 'https' && !customSchemes.includes(scheme))
      throw `"${raw}" uses scheme "${scheme}"; add it to CORS_ALLOW_CUSTOM_SCHEME or use http(s)`;
    if ((scheme === 'http' || scheme === 'https') && (u.pathname !== '/' || u.search || u.hash || raw.endsWith('/')))
      throw `"${raw}" must be an origin without a path (e.g. https://chat.example.com)`;
    out.push(scheme === 'http' || scheme === 'https' ? u.origin : raw.replace(/\/+$/, ''));
  }
  if (out.length === 0) throw 'must be * or a ";" list of origins';
  return out;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** JWT_EXPIRES_IN: -1 (never) or a duration like 4w, 24h, 30m, 90s, 500ms, 1h30m. Returns ms or null. */
export function parseDuration(v: string): number | null {
  const t = v.trim();
  if (t === '-1') return null;
  if (!/^(\d+(ms|s|m|h|d|w))+$/.test(t)) throw `"${v}" is not a duration; use -1 or e.g. 4w, 24h, 30m, 90s, 500ms`;
  let total = 0;
  for (const m of t.matchAll(/(\d+)(ms|s|m|h|d|w)/g)) total += Number(m[1]) * UNITS[m[2]!]!;
  if (total < 1000) throw `"${v}" is shorter than one second`;
  return total;
}

/** AUDIT-style sizes: 10MB, 512KB, 1048576. */
export function parseByteSize(v: string): number {
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(v.trim());
  if (!m) throw `"${v}" is not a size; use e.g. 10MB, 512KB or a number of bytes`;
  const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Number(m[1]) * mult;
}
