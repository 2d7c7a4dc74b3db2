import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Keyring } from './keyring.js';

/**
 * Session tokens: HS256 JWTs with `sub` (the user the request acts as), `sid` (the session row that
 * makes the token revocable), `jti`, `iat`, `exp` and a `kid` header naming the root key. The `typ`
 * header is checked so that a token minted for another purpose can never pass as a session.
 */
export const SESSION_TYP = 'hridaai-session+jwt';

export interface SessionClaims {
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp?: number;
  /** The admin acting during impersonation. */
  act?: string;
}

export async function signToken(
  keyring: Keyring,
  claims: { sub: string; sid: string; act?: string },
  expiresInMs: number | null,
  typ: string = SESSION_TYP,
  now = Date.now(),
): Promise<string> {
  const iat = Math.floor(now / 1000);
  const jwt = new SignJWT({ sid: claims.sid, ...(claims.act ? { act: claims.act } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ, kid: keyring.current.kid })
    .setSubject(claims.sub)
    .setJti(randomUUID())
    .setIssuedAt(iat);
  if (expiresInMs !== null) jwt.setExpirationTime(iat + Math.ceil(expiresInMs / 1000));
  return jwt.sign(keyring.current.derive('jwt'));
}

export type VerifyFailure = 'malformed' | 'expired' | 'bad_signature' | 'unknown_key' | 'wrong_type' | 'missing_claims';

export async function verifyToken(
  keyring: Keyring,
  token: string,
  opts: { requireExp: boolean; typ?: string },
): Promise<{ ok: true; claims: SessionClaims } | { ok: false; reason: VerifyFailure }> {
  if (token.length > 4096 || token.split('.').length !== 3) return { ok: false, reason: 'malformed' };
  let unknownKid = false;
  try {
    const { payload } = await jwtVerify(
      token,
      (header) => {
        const root = typeof header.kid === 'string' ? keyring.byKid(header.kid) : undefined;
        if (!root) {
          unknownKid = true;
          throw new Error('unknown kid');
        }
        return root.derive('jwt');
      },
      {
        algorithms: ['HS256'],
        typ: opts.typ ?? SESSION_TYP,
        requiredClaims: opts.requireExp ? ['sub', 'sid', 'jti', 'iat', 'exp'] : ['sub', 'sid', 'jti', 'iat'],
      },
    );
    const p = payload as JWTPayload & { sid?: unknown; act?: unknown };
    if (typeof p.sub !== 'string' || typeof p.sid !== 'string' || typeof p.jti !== 'string')
      return { ok: false, reason: 'missing_claims' };
    if (p.act !== undefined && typeof p.act !== 'string') return { ok: false, reason: 'missing_claims' };
    return {
      ok: true,
      claims: {
        sub: p.sub,
        sid: p.sid,
        jti: p.jti,
        iat: p.iat as number,
        ...(p.exp !== undefined ? { exp: p.exp } : {}),
        ...(typeof p.act === 'string' ? { act: p.act } : {}),
      },
    };
  } catch (e) {
    if (unknownKid) return { ok: false, reason: 'unknown_key' };
    if (e instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) return { ok: false, reason: 'bad_signature' };
    if (e instanceof joseErrors.JWTClaimValidationFailed) {
      return { ok: false, reason: e.claim === 'typ' ? 'wrong_type' : 'missing_claims' };
    }
    return { ok: false, reason: 'malformed' };
  }
}
