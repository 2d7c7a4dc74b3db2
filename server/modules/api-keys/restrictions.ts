import { normaliseEndpointEntry } from '../../config/settings/access.js';

export { normaliseEndpointEntry };

/**
 * The path an endpoint allowlist is checked against. Returns null (refuse) for anything that could
 * make the router see a different path than the check: percent-encoded slashes or backslashes,
 * undecodable escapes, backslashes, control characters, `;`, doubled slashes, and `.`/`..`
 * segments. Otherwise: percent-decoded, trailing slash removed, lower-cased (the allowlist is
 * compared case-insensitively, so a case variant can never reach a route the list does not name).
 */
export function normaliseRequestPath(rawUrl: string): string | null {
  const cut = rawUrl.search(/[?#]/);
  const raw = cut === -1 ? rawUrl : rawUrl.slice(0, cut);
  if (/%(2f|5c|00)/i.test(raw)) return null;
  let p: string;
  try {
    p = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (!p.startsWith('/')) return null;
  if (/[\\;\x7f]/.test(p) || [...p].some((ch) => ch.charCodeAt(0) < 0x20)) return null;
  if (p.includes('//')) return null;
  if (p.split('/').some((s) => s === '.' || s === '..')) return null;
  if (p.length > 1) p = p.replace(/\/+$/, '');
  return p.toLowerCase();
}

/** An entry matches the path itself and every path below it (`/a` matches `/a` and `/a/b`, not `/ab`). */
export function pathAllowed(path: string, entries: readonly string[]): boolean {
  for (const e of entries) {
    if (e === '/') return true;
    if (path === e || path.startsWith(e + '/')) return true;
  }
  return false;
}
