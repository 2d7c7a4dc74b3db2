import { createHmac, hkdfSync, randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Otplib from 'otplib';
import type { Keyring, RootKey } from '../../platform/security/keyring.js';

/**
 * TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps — what every authenticator app speaks) through
 * otplib, and the one-time recovery codes.
 */
export const TOTP_STEP_MS = 30_000;
export const RECOVERY_CODE_COUNT = 10;

// otplib is loaded at the first TOTP operation (most requests never need it).
let otplib: typeof Otplib | null = null;
const authenticatorLib = () => (otplib ??= createRequire(import.meta.url)('otplib') as typeof Otplib).authenticator;

/** A new 160-bit secret, base32 (as authenticator apps expect). */
export function newTotpSecret(): string {
  return authenticatorLib().generateSecret(20);
}

/** The otpauth URI a QR code encodes (`otpauth://totp/Issuer:account?secret=…&issuer=…`). */
export function otpauthUri(secret: string, account: string, issuer: string): string {
  return authenticatorLib().keyuri(account, issuer, secret);
}

/** The code for `at` (ms since epoch). */
export function totpCode(secret: string, at: number): string {
  return authenticatorLib().clone({ epoch: at }).generate(secret);
}

export function totpStep(at: number): number {
  return Math.floor(at / TOTP_STEP_MS);
}

/**
 * The time step a code belongs to when it is valid at `now` within ±1 step, or null. The caller
 * accepts it only if the step is later than the last accepted one (no replay within the window).
 */
export function matchTotp(code: string, secret: string, now: number): number | null {
  const c = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(c)) return null;
  let delta: number | null;
  try {
    delta = authenticatorLib().clone({ epoch: now, window: 1 }).checkDelta(c, secret);
  } catch {
    return null;
  }
  return delta === null ? null : totpStep(now) + delta;
}

// ---- recovery codes

/** Crockford base32 without look-alikes (no i, l, o, u). */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_CHARS = 12; // 60 bits

/** Ten fresh codes, shown to the user once: `xxxx-xxxx-xxxx`. */
export function newRecoveryCodes(n = RECOVERY_CODE_COUNT): string[] {
  const out = new Set<string>();
  while (out.size < n) {
    let s = '';
    for (let i = 0; i < CODE_CHARS; i++) s += ALPHABET[randomInt(ALPHABET.length)];
    out.add(`${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`);
  }
  return [...out];
}

/** What a user typed, in canonical form (case, dashes and spaces ignored; o→0, i/l→1), or null. */
export function normaliseRecoveryCode(input: string): string | null {
  const s = input.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
  if (s.length !== CODE_CHARS) return null;
  for (const ch of s) if (!ALPHABET.includes(ch)) return null;
  return s;
}

function recoveryKey(root: RootKey): Buffer {
  return Buffer.from(hkdfSync('sha256', root.derive('at-rest'), Buffer.alloc(0), 'hridaai/recovery-codes', 32));
}

/** HMAC-SHA256 of a canonical code with a key derived from a root key (stored with its kid). */
export function hashRecoveryCode(root: RootKey, canonical: string): string {
  return createHmac('sha256', recoveryKey(root)).update(canonical, 'utf8').digest('hex');
}

/** The hashes a typed code may be stored under: one per root key this server knows. */
export function recoveryCodeHashes(keyring: Keyring, canonical: string): string[] {
  const roots = [keyring.current, ...(keyring.previous ? [keyring.previous] : [])];
  return roots.map((r) => hashRecoveryCode(r, canonical));
}
