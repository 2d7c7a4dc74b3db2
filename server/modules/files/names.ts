/**
 * File names from clients are display text only: the bytes are stored under a random name. Still,
 * the display name goes into Content-Disposition and the UI, so it is cleaned: no path, no control
 * characters (NUL, CR, LF …), no bidirectional overrides or zero-width characters, no characters
 * Windows refuses, at most 255 UTF-8 bytes with the extension kept.
 */
/** Control characters (C0, DEL, C1), zero-width and bidirectional formatting characters, fillers. */
const STRIPPED_RANGES: [number, number][] = [
  [0x0000, 0x001f],
  [0x007f, 0x009f],
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x061c, 0x061c],
  [0x115f, 0x1160],
  [0x17b4, 0x17b5],
  [0x180e, 0x180e],
  [0x200b, 0x200f],
  [0x202a, 0x202e],
  [0x2060, 0x206f],
  [0x3164, 0x3164],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
  [0xffa0, 0xffa0],
  [0xfff0, 0xfffb],
];

function stripInvisible(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (!STRIPPED_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi)) out += ch;
  }
  return out;
}

const RESERVED = /[<>:"|?*\\/]/g;
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;

export const MAX_NAME_BYTES = 255;

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch, 'utf8') > maxBytes) break;
    out += ch;
  }
  return out;
}

export function sanitizeFilename(raw: string | undefined | null): string {
  let s = String(raw ?? '').normalize('NFC');
  s = s.split(/[\\/]/).pop() ?? '';
  s = stripInvisible(s).replace(RESERVED, '_');
  s = s
    .trim()
    .replace(/^[.\s]+/, '')
    .replace(/[.\s]+$/, '');
  if (!s) s = 'file';
  if (WINDOWS_DEVICE.test(s)) s = `_${s}`;
  if (Buffer.byteLength(s, 'utf8') > MAX_NAME_BYTES) {
    const dot = s.lastIndexOf('.');
    const ext = dot > 0 && s.length - dot <= 17 ? s.slice(dot) : '';
    s = truncateUtf8(s.slice(0, ext ? dot : s.length), MAX_NAME_BYTES - Buffer.byteLength(ext, 'utf8')) + ext;
  }
  return s;
}

/** Lower-case extension of a sanitised name ('' when none or not a plain extension). */
export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return '';
  const ext = name.slice(dot + 1).toLowerCase();
  return /^[a-z0-9][a-z0-9_+-]{0,15}$/.test(ext) ? ext : '';
}

/** `attachment` with an ASCII fallback and the RFC 5987 UTF-8 form. */
export function contentDisposition(kind: 'attachment' | 'inline', name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%;]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
