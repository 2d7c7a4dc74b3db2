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
 * copies the text, replacing values by the same key and value rules, and stops once the output
 * passes `maxBytes` — the body is never parsed whole, so its size costs nothing beyond the limit.
 * Keys are compared decoded (`"\u0070assword"` is `password`). Returns null for text that is not JSON.
 */
export function redactJsonText(src: string, maxBytes: number): { text: string; truncated: boolean } | null {
  const n = src.length;
  let i = 0;
  const out: string[] = [];
  let len = 0;
  const over = () => len > maxBytes;
  const push = (s: string) => {
    out.push(s);
    len += s.length;
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
  const readString = (): string => {
    const start = i;
    if (src[i] !== '"') fail();
    i++;
    while (i < n) {
      const c = src.charCodeAt(i);
      if (c === 92) i += 2;
      else if (c === 34) return src.slice(start, ++i);
      else i++;
    }
    return fail();
  };
  const readScalar = (): string => {
    const start = i;
    while (i < n) {
      const c = src[i]!;
      if (c === ',' || c === ']' || c === '}' || c === ' ' || c === '\n' || c === '\r' || c === '\t') break;
      i++;
    }
    const tok = src.slice(start, i);
    if (!SCALAR.test(tok)) fail();
    return tok;
  };
  const skipValue = () => {
    ws();
    const c = src[i];
    if (c === '"') return void readString();
    if (c !== '{' && c !== '[') return void readScalar();
    let depth = 0;
    while (i < n) {
      const d = src[i];
      if (d === '"') {
        readString();
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') depth--;
      i++;
      if (depth === 0) return;
    }
    fail();
  };
  const value = (depth: number): void => {
    if (over()) return;
    ws();
    const c = src[i];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) {
        skipValue();
        return push('"[…]"');
      }
      const obj = c === '{';
      const close = obj ? '}' : ']';
      i++;
      push(c);
      ws();
      if (src[i] === close) {
        i++;
        return push(close);
      }
      for (;;) {
        if (obj) {
          ws();
          const keyTok = readString();
          const key = JSON.parse(keyTok) as string;
          ws();
          if (src[i] !== ':') fail();
          i++;
          push(keyTok + ':');
          ws();
          if (isSecretKey(key)) {
            const isCount = key.toLowerCase().endsWith('tokens') && /[-0-9]/.test(src[i] ?? '');
            if (isCount) push(readScalar());
            else {
              skipValue();
              push(JSON.stringify(REDACTED));
            }
          } else value(depth + 1);
        } else value(depth + 1);
        if (over()) return;
        ws();
        if (src[i] === ',') {
          i++;
          push(',');
          continue;
        }
        if (src[i] === close) {
          i++;
          return push(close);
        }
        fail();
      }
    }
    if (c === '"') {
      const tok = readString();
      if (tok.length < 16) return push(tok);
      const s = JSON.parse(tok) as string;
      const r = redactString(s);
      return push(r === s ? tok : JSON.stringify(r));
    }
    push(readScalar());
  };
  try {
    value(0);
    if (!over()) {
      ws();
      if (i < n) fail();
    }
  } catch {
    return null;
  }
  const text = out.join('');
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return { text, truncated: false };
  return { text: cutUtf8(text, maxBytes), truncated: true };
}
