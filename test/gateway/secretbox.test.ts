import { describe, expect, it } from 'vitest';
import { createKeyring } from '../../server/platform/security/keyring.js';
import { aadFor, createSecretBox, SecretBoxError } from '../../server/platform/security/secretbox.js';

const OLD = 'old-secret-key-0123456789abcdef';
const NEW = 'new-secret-key-0123456789abcdef';
const AAD = aadFor({ table: 'model_connections', column: 'api_key_enc' }, 'row-1');

describe('secretbox (AES-256-GCM, versioned envelope with key id)', () => {
  const box = createSecretBox(createKeyring(OLD, null));

  it('round-trips and never stores the plaintext', () => {
    const env = box.seal('sk-live-abcdef', AAD);
    expect(env).toMatch(/^hsb1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(env).not.toContain('sk-live');
    expect(box.kidOf(env)).toBe(box.currentKid);
    expect(box.open(env, AAD)).toBe('sk-live-abcdef');
    // A fresh IV every time.
    expect(box.seal('sk-live-abcdef', AAD)).not.toBe(env);
  });

  it('refuses a tampered ciphertext, tag, IV or version — and never returns the ciphertext', () => {
    const env = box.seal('secret', AAD);
    const parts = env.split('.');
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    for (const i of [2, 3, 4]) {
      const bad = parts.map((p, j) => (j === i ? flip(p) : p)).join('.');
      expect(() => box.open(bad, AAD)).toThrow(SecretBoxError);
    }
    expect(() => box.open(['hsb2', ...parts.slice(1)].join('.'), AAD)).toThrow(SecretBoxError);
    expect(() => box.open('plaintext-value', AAD)).toThrow(SecretBoxError);
    try {
      box.open(parts.map((p, j) => (j === 3 ? flip(p) : p)).join('.'), AAD);
    } catch (e) {
      expect((e as SecretBoxError).code).toBe('secret_unreadable');
      expect((e as Error).message).not.toContain(parts[3]!);
    }
  });

  it('binds a value to its row and column (a copied ciphertext does not open elsewhere)', () => {
    const env = box.seal('secret', AAD);
    expect(() => box.open(env, aadFor({ table: 'model_connections', column: 'api_key_enc' }, 'row-2'))).toThrow(
      SecretBoxError,
    );
    expect(() => box.open(env, aadFor({ table: 'model_connections', column: 'headers_enc' }, 'row-1'))).toThrow(
      SecretBoxError,
    );
  });

  it('opens values sealed with the previous key, seals with the current one, refuses unknown keys', () => {
    const sealedOld = box.seal('secret', AAD);
    const rotated = createSecretBox(createKeyring(NEW, OLD));
    expect(rotated.open(sealedOld, AAD)).toBe('secret');
    const sealedNew = rotated.seal('secret', AAD);
    expect(rotated.kidOf(sealedNew)).not.toBe(box.kidOf(sealedOld));
    const newOnly = createSecretBox(createKeyring(NEW, null));
    expect(() => newOnly.open(sealedOld, AAD)).toThrow(/HRIDAAI_SECRET_KEY_PREVIOUS/);
    expect(newOnly.open(sealedNew, AAD)).toBe('secret');
  });
});
