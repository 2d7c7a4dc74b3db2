import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API key format: `sk-` + id (16 lower-case hex characters, 64 bits, the row's primary key) +
 * secret (43 base64url characters, 256 bits from the CSPRNG). Only HMAC-SHA256(pepper, key) is
 * stored; the pepper is derived from the secret key (HKDF purpose `api-key-pepper`).
 */
export const KEY_PREFIX = 'sk-';
const ID_HEX = 16;
const SECRET_CHARS = 43;
const KEY_RE = /^sk-([0-9a-f]{16})([A-Za-z0-9_-]{43})$/;
export const KEY_LENGTH = KEY_PREFIX.length + ID_HEX + SECRET_CHARS;

export function newKeyId(): string {
  return randomBytes(ID_HEX / 2).toString('hex');
}

export function newKey(id: string = newKeyId()): { id: string; key: string; hint: string } {
  const secret = randomBytes(32).toString('base64url');
  if (secret.length !== SECRET_CHARS) throw new Error('unexpected secret length');
  return { id, key: `${KEY_PREFIX}${id}${secret}`, hint: secret.slice(-4) };
}

/** The id of a well-formed key, or null. Cheap: no hashing, no storage. */
export function parseKey(token: string): { id: string } | null {
  if (token.length !== KEY_LENGTH) return null;
  const m = KEY_RE.exec(token);
  return m ? { id: m[1]! } : null;
}

export function hashKey(pepper: Buffer, key: string): string {
  return createHmac('sha256', pepper).update(key, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}
