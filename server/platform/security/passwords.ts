import { compare, hash } from '@node-rs/bcrypt';

/** bcrypt reads at most 72 bytes; longer passwords are refused instead of silently truncated. */
export const BCRYPT_MAX_BYTES = 72;

export function passwordTooLong(password: string): boolean {
  return Buffer.byteLength(password, 'utf8') > BCRYPT_MAX_BYTES;
}

export async function hashPassword(password: string, rounds: number): Promise<string> {
  if (passwordTooLong(password)) throw new Error('password longer than 72 bytes');
  return hash(password, rounds);
}

export async function verifyPassword(password: string, passwordHash: string): Promise<boolean> {
  if (passwordTooLong(password)) return false;
  try {
    return await compare(password, passwordHash);
  } catch {
    return false;
  }
}

/**
 * A hash of a random password at the configured cost: checked when the account does not exist,
 * so that an unknown e-mail takes as long as a wrong password.
 */
export async function makeDummyHash(rounds: number): Promise<string> {
  return hash(`dummy-${Math.random()}`, rounds);
}
