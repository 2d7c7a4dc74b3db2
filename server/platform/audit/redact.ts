/**
 * Redaction for the audit log and the audit trail, by JSON structure: a value is replaced when its
 * key looks secret (at any depth, inside arrays too), and secret-looking values (API keys, session
 * tokens) are replaced wherever they appear. Redaction happens before anything is cut or written.
 */

export const REDACTED = '[REDACTED]';

const EXACT_SECRET_KEYS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'apikey']);
const SECRET_PARTS = ['password', 'passwd', 'passphrase', 'token', 'secret', 'api_key', 'api-key', 'credential'];

/**
 * True for keys whose values are never written: `password`, `new_password` (anything containing
 * `password`), anything containing `token`, `secret`, `api_key`, anything ending in `_key` / `-key`
 * (or `…Key` in camelCase), and the Authorization / Cookie headers.
 */
export function isSecretKey(name: string): boolean {
  const hit = keyCache.get(name);
  if (hit !== undefined) return hit;
  const r = computeIsSecretKey(name);
  if (keyCache.size >= 10_000) keyCache.clear();
  keyCache.set(name, r);
  return r;
}

/** The same keys come back in every body: remember the answer. */
const keyCache = new Map<string, boolean>();

function computeIsSecretKey(name: string): boolean {
  const lower = name.toLowerCase();
  if (EXACT_SECRET_KEYS.has(lower)) return true;
  for (const p of SECRET_PARTS) if (lower.includes(p)) return true;
  if (lower.endsWith('_key') || lower.endsWith('-key')) return true;
  return /[a-z0-9]Key$/.test(name);
}

/**
 * Whether a key/value pair is redacted. One exception to the key rule: token *counts* (`max_tokens`,
 * `prompt_tokens`, `total_tokens` … with a number value) are usage figures, not credentials.
 */
export function redactsPair(key: string, value: unknown): boolean {
  if (!isSecretKey(key)) return false;
  return !(typeof value === 'number' && key.toLowerCase().endsWith('tokens'));
}

/** Query parameters that carry one-time secrets besides the key rule (OAuth authorization codes). */
function isSecretQueryName(name: string): boolean {
  return isSecretKey(name) || name.toLowerCase() === 'code';
}

/** API keys (`sk-…`), JWTs (session tokens) and Bearer credentials, wherever they appear in a string. */
const SECRET_VALUE =
  /\bsk-[A-Za-z0-9_-]{12,}|\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}|\bBearer\s+\S+/g;

export function redactString(s: string): string {
  if (s.length < 14) return s;
  // Cheap pre-check: most strings hold none of the three markers.
  if (s.indexOf('sk-') < 0 && s.indexOf('eyJ') < 0 && s.indexOf('Bearer') < 0) return s;
  return s.replace(SECRET_VALUE, REDACTED);
}

const MAX_DEPTH = 32;

/** A masked deep copy (keys by the rules above, values by pattern). Depth beyond 32 becomes "[…]". */
export function maskValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redactString(v);
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? String(v) : v;
  if (depth >= MAX_DEPTH) return '[…]';
  if (Array.isArray(v)) return v.map((x) => maskValue(x, depth + 1));
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return `[${v.length} bytes]`;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined || typeof x === 'function') continue;
    out[k] = redactsPair(k, x) ? REDACTED : maskValue(x, depth + 1);
  }
  return out;
}

/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
export function cutUtf8(s: string, maxBytes: number): string {
  if (s.length * 3 <= maxBytes) return s;
  const b = Buffer.from(s, 'utf8');
  if (b.length <= maxBytes) return s;
  let end = maxBytes;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}

/**
 * Redacts and serialises a JSON-like value, stopping as soon as the output exceeds `maxBytes`
 * (large bodies cost no more than the limit). The text is cut at `maxBytes` and `truncated` says so.
 */
export function redactToJson(v: unknown, maxBytes: number): { text: string; truncated: boolean } {
  const parts: string[] = [];
  let len = 0;
  const over = () => len > maxBytes;
  const push = (s: string) => {
    parts.push(s);
    len += s.length;
  };
  const walk = (x: unknown, depth: number): void => {
    if (over()) return;
    if (typeof x === 'string') return push(JSON.stringify(redactString(x)));
    if (typeof x === 'number') return push(Number.isFinite(x) ? String(x) : 'null');
    if (typeof x === 'boolean') return push(String(x));
    if (typeof x === 'bigint') return push(JSON.stringify(String(x)));
    if (x === null || x === undefined || typeof x !== 'object') return push('null');
    if (depth >= MAX_DEPTH) return push('"[…]"');
    if (Array.isArray(x)) {
      push('[');
      for (let i = 0; i < x.length && !over(); i++) {
        if (i) push(',');
        walk(x[i], depth + 1);
      }
      return push(']');
    }
    if (Buffer.isBuffer(x)) return push(JSON.stringify(`[${x.length} bytes]`));
    if (x instanceof Date) return push(JSON.stringify(Number.isNaN(x.getTime()) ? null : x.toISOString()));
    push('{');
    let first = true;
    for (const k in x) {
      if (!Object.prototype.hasOwnProperty.call(x, k)) continue;
      const val = (x as Record<string, unknown>)[k];
      if (val === undefined || typeof val === 'function') continue;
      if (over()) break;
      if (!first) push(',');
      first = false;
      push(JSON.stringify(k) + ':');
      if (redactsPair(k, val)) push(JSON.stringify(REDACTED));
      else walk(val, depth + 1);
    }
    push('}');
  };
  walk(v, 0);
  const text = parts.join('');
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return { text, truncated: false };
  return { text: cutUtf8(text, maxBytes), truncated: true };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** The URL with secret query values replaced (by parameter name and by value pattern). */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const path = redactString(q < 0 ? url : url.slice(0, q));
  if (q < 0) return path;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      if (eq < 0) return isSecretQueryName(safeDecode(name)) ? `${name}=${REDACTED}` : redactString(pair);
      if (isSecretQueryName(safeDecode(name))) return `${name}=${REDACTED}`;
      const value = pair.slice(eq + 1);
      const red = redactString(safeDecode(value));
      return red === safeDecode(value) ? pair : `${name}=${encodeURIComponent(red)}`;
    })
    .join('&');
  return `${path}?${query}`;
}

/** Request headers with secret ones replaced. */
export function redactHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    if (isSecretKey(k)) out[k] = REDACTED;
    else out[k] = Array.isArray(v) ? v.map(redactString) : redactString(v);
  }
  return out;
}

/** `application/x-www-form-urlencoded` text as an object, so that it is redacted by key like JSON. */
export function parseForm(text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    const cur = out[k];
    if (cur === undefined) out[k] = v;
    else out[k] = Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

const SCALAR = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)$/;

/**
 * Like `redactToJson`, but straight from JSON text (a response body as sent): a small tokenizer
 * walks the text and copies it, replacing values by the same key and value rules, and stops once
 * the output passes `maxBytes` — the body is never parsed whole, so its size costs nothing beyond
 * the limit. Keys are compared decoded (`"\u0070assword"` is `password`). Returns null for text
 * that is not JSON.
 */
export function redactJsonText(src: string, maxBytes: number): { text: string; truncated: boolean } | null {
  const n = src.length;
  let i = 0;
  // Output = the source with some spans replaced: kept as slices, joined at the end.
  const parts: string[] = [];
  let partsLen = 0;
  let segStart = 0;
  const outLen = () => partsLen + (i - segStart);
  const over = () => outLen() > maxBytes;
  const replace = (from: number, to: number, replacement: string) => {
    parts.push(src.slice(segStart, from), replacement);
    partsLen += from - segStart + replacement.length;
    segStart = to;
  };
  const fail = (): never => {
    throw new SyntaxError('not JSON');
  };
  const ws = () => {
    while (i < n) {
      const c = src.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  /** Moves past a string token; returns whether it contains an escape. */
  const skipString = (): boolean => {
    if (src.charCodeAt(i) !== 34) fail();
    const open = i;
    let j = i + 1;
    for (;;) {
      const q = src.indexOf('"', j);
      if (q < 0) fail();
      let b = q - 1;
      while (b > open && src.charCodeAt(b) === 92) b--;
      if ((q - 1 - b) % 2 === 0) {
        i = q + 1;
        const bs = src.indexOf('\\', open);
        return bs >= 0 && bs < q;
      }
      j = q + 1;
    }
  };
  const stringValue = (from: number, escaped: boolean): string =>
    escaped ? (JSON.parse(src.slice(from, i)) as string) : src.slice(from + 1, i - 1);
  const skipScalar = (): number => {
    const start = i;
    while (i < n) {
      const c = src.charCodeAt(i);
      // , ] } and whitespace end a scalar
      if (c === 44 || c === 93 || c === 125 || c === 32 || c === 10 || c === 13 || c === 9) break;
      i++;
    }
    if (!SCALAR.test(src.slice(start, i))) fail();
    return start;
  };
  const skipValue = () => {
    const c = src.charCodeAt(i);
    if (c === 34) return void skipString();
    if (c !== 123 && c !== 91) return void skipScalar();
    let depth = 0;
    while (i < n) {
      const d = src.charCodeAt(i);
      if (d === 34) {
        skipString();
        continue;
      }
      if (d === 123 || d === 91) depth++;
      else if (d === 125 || d === 93) depth--;
      i++;
      if (depth === 0) return;
    }
    fail();
  };
  const value = (depth: number): void => {
    if (over()) return;
    ws();
    const c = src.charCodeAt(i);
    if (c === 123 || c === 91) {
      const start = i;
      if (depth >= MAX_DEPTH) {
        skipValue();
        return replace(start, i, '"[…]"');
      }
      const obj = c === 123;
      const close = obj ? 125 : 93;
      i++;
      ws();
      if (src.charCodeAt(i) === close) {
        i++;
        return;
      }
      for (;;) {
        if (obj) {
          ws();
          const k0 = i;
          const key = stringValue(k0, skipString());
          ws();
          if (src.charCodeAt(i) !== 58) fail();
          i++;
          ws();
          if (isSecretKey(key)) {
            const v0 = i;
            const first = src.charCodeAt(i);
            const count = (first === 45 || (first >= 48 && first <= 57)) && key.toLowerCase().endsWith('tokens');
            skipValue();
            if (!count) replace(v0, i, JSON.stringify(REDACTED));
          } else value(depth + 1);
        } else value(depth + 1);
        if (over()) return;
        ws();
        const d = src.charCodeAt(i);
        if (d === 44) {
          i++;
          continue;
        }
        if (d === close) {
          i++;
          return;
        }
        fail();
      }
    }
    if (c === 34) {
      const start = i;
      const escaped = skipString();
      if (i - start < 16) return;
      const s = stringValue(start, escaped);
      const r = redactString(s);
      if (r !== s) replace(start, i, JSON.stringify(r));
      return;
    }
    skipScalar();
  };
  let stopped = false;
  try {
    value(0);
    stopped = over();
    if (!stopped) {
      ws();
      if (i < n) fail();
    }
  } catch {
    return null;
  }
  parts.push(src.slice(segStart, i));
  const text = parts.join('');
  if (!stopped && Buffer.byteLength(text, 'utf8') <= maxBytes) return { text, truncated: false };
  return { text: cutUtf8(text, maxBytes), truncated: true };
}
