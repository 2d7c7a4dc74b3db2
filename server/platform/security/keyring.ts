import { hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The key hierarchy: HRIDAAI_SECRET_KEY is the root; every purpose gets its own key derived with
 * HKDF-SHA256, so a key used for one thing (signing sessions) can never be confused with another
 * (peppering API keys, encrypting at rest). Each root has a short id (`kid`) that tokens carry.
 */

export type KeyPurpose = 'jwt' | 'api-key-pepper' | 'at-rest' | 'cookie' | 'audit-chain';

export interface RootKey {
  kid: string;
  derive(purpose: KeyPurpose): Buffer;
}

export interface Keyring {
  current: RootKey;
  previous: RootKey | null;
  byKid(kid: string): RootKey | undefined;
}

const SALT = Buffer.from('hridaai/v1');

function makeRoot(secret: string): RootKey {
  const ikm = Buffer.from(secret, 'utf8');
  const cache = new Map<string, Buffer>();
  const kid = Buffer.from(hkdfSync('sha256', ikm, SALT, 'hridaai/kid', 9)).toString('base64url');
  return {
    kid,
    derive(purpose) {
      let k = cache.get(purpose);
      if (!k) {
        k = Buffer.from(hkdfSync('sha256', ikm, SALT, `hridaai/${purpose}`, 32));
        cache.set(purpose, k);
      }
      return k;
    },
  };
}

export function createKeyring(secret: string, previous: string | null): Keyring {
  const current = makeRoot(secret);
  const prev = previous ? makeRoot(previous) : null;
  return {
    current,
    previous: prev && prev.kid !== current.kid ? prev : null,
    byKid(kid) {
      if (kid === current.kid) return current;
      if (prev && kid === prev.kid) return prev;
      return undefined;
    },
  };
}

export const SECRET_KEY_FILE = '.hridaai_secret_key';

/**
 * HRIDAAI_SECRET_KEY if set; otherwise the key saved in `<dataDir>/.hridaai_secret_key`, generated
 * with a CSPRNG on first start (mode 0600; created exclusively so two processes starting at once
 * agree on one key).
 */
export function resolveSecretKey(
  fromEnv: string | null,
  dataDir: string,
): { secret: string; source: 'env' | 'file' | 'generated' } {
  if (fromEnv) return { secret: fromEnv, source: 'env' };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, SECRET_KEY_FILE);
  const generated = randomBytes(32).toString('base64');
  try {
    writeFileSync(file, generated + '\n', { flag: 'wx', mode: 0o600 });
    return { secret: generated, source: 'generated' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0) chmodSync(file, 0o600);
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length < 16) throw new Error(`${file} is empty or too short; delete it to generate a new key`);
  return { secret, source: 'file' };
}
