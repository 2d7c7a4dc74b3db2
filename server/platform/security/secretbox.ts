import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/index.js';
import { AppError } from '../http/errors.js';
import type { Keyring, RootKey } from './keyring.js';

/**
 * Secrets at rest (connection API keys, extra headers, …): AES-256-GCM with a key derived from the
 * secret key for the `at-rest` purpose. The stored value is a versioned envelope that names the
 * key it was sealed with:
 *
 *     hsb1.<kid>.<iv>.<ciphertext>.<tag>      (base64url parts, 96-bit IV, 128-bit tag)
 *
 * Every value is bound to where it lives (`table.column:row-id` as additional authenticated data),
 * so a ciphertext copied into another row or column does not open. A value that does not open is
 * an error — the ciphertext is never handed back as if it were the secret.
 * `hrida-ai keys rotate` re-seals every registered column with the current key.
 */

const VERSION = 'hsb1';

export class SecretBoxError extends AppError {
  constructor(message: string) {
    super('secret_unreadable', message);
    this.name = 'SecretBoxError';
  }
}

export interface SecretBox {
  /** Seals `plaintext` for the place named by `aad` (e.g. `model_connections.api_key:<id>`). */
  seal(plaintext: string, aad: string): string;
  /** Opens an envelope; throws SecretBoxError when it is not ours, tampered or sealed elsewhere. */
  open(envelope: string, aad: string): string;
  /** The key id an envelope was sealed with (null when the value is not an envelope). */
  kidOf(envelope: string): string | null;
  currentKid: string;
}

function keyOf(root: RootKey): Buffer {
  return root.derive('at-rest');
}

export function createSecretBox(keyring: Keyring): SecretBox {
  return {
    currentKid: keyring.current.kid,
    seal(plaintext, aad) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', keyOf(keyring.current), iv);
      c.setAAD(Buffer.from(aad, 'utf8'));
      const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
      const tag = c.getAuthTag();
      return [
        VERSION,
        keyring.current.kid,
        iv.toString('base64url'),
        ct.toString('base64url'),
        tag.toString('base64url'),
      ].join('.');
    },
    open(envelope, aad) {
      const parts = envelope.split('.');
      if (parts.length !== 5 || parts[0] !== VERSION)
        throw new SecretBoxError('A stored secret is not in a format this server can read');
      const [, kid, ivB, ctB, tagB] = parts as [string, string, string, string, string];
      const root = keyring.byKid(kid);
      if (!root)
        throw new SecretBoxError(
          'A stored secret was encrypted with a key this server does not have (set HRIDAAI_SECRET_KEY_PREVIOUS, then run `hrida-ai keys rotate`)',
        );
      try {
        const iv = Buffer.from(ivB, 'base64url');
        const tag = Buffer.from(tagB, 'base64url');
        if (iv.length !== 12 || tag.length !== 16) throw new Error('bad sizes');
        const d = createDecipheriv('aes-256-gcm', keyOf(root), iv);
        d.setAAD(Buffer.from(aad, 'utf8'));
        d.setAuthTag(tag);
        return Buffer.concat([d.update(Buffer.from(ctB, 'base64url')), d.final()]).toString('utf8');
      } catch {
        throw new SecretBoxError('A stored secret failed its integrity check and cannot be used');
      }
    },
    kidOf(envelope) {
      const parts = envelope.split('.');
      return parts.length === 5 && parts[0] === VERSION ? parts[1]! : null;
    },
  };
}

/** A column holding sealed values, with the additional data each value is bound to. */
export interface EncryptedColumn {
  table: string;
  column: string;
  /** Primary-key column. */
  id: string;
}

/** The additional authenticated data of a sealed value: its table, column and row. */
export function aadFor(col: Pick<EncryptedColumn, 'table' | 'column'>, rowId: string): string {
  return `${col.table}.${col.column}:${rowId}`;
}

/**
 * Every column that holds sealed values. A feature that stores secrets adds its columns here so
 * that `hrida-ai keys rotate` re-encrypts them.
 */
export const ENCRYPTED_COLUMNS: EncryptedColumn[] = [
  { table: 'model_connections', column: 'api_key_enc', id: 'id' },
  { table: 'model_connections', column: 'headers_enc', id: 'id' },
  { table: 'user_security', column: 'totp_secret_enc', id: 'user_id' },
  { table: 'user_security', column: 'totp_pending_enc', id: 'user_id' },
];

export interface RotationReport {
  table: string;
  column: string;
  rotated: number;
  current: number;
  failed: number;
}

/**
 * Re-seals every registered value with the current key. Values already under the current key are
 * left alone; a value that cannot be opened is counted as failed and left unchanged (never
 * overwritten). Each update is conditional on the old value, so a concurrent edit wins.
 */
export async function rotateSecrets(
  db: Db,
  box: SecretBox,
  columns: EncryptedColumn[] = ENCRYPTED_COLUMNS,
): Promise<RotationReport[]> {
  const out: RotationReport[] = [];
  for (const col of columns) {
    const report: RotationReport = { table: col.table, column: col.column, rotated: 0, current: 0, failed: 0 };
    const rows = (
      await sql<{ id: string; v: string }>`select ${sql.ref(col.id)} as id, ${sql.ref(col.column)} as v
      from ${sql.table(col.table)} where ${sql.ref(col.column)} is not null`.execute(db)
    ).rows;
    for (const row of rows) {
      if (box.kidOf(row.v) === box.currentKid) {
        report.current += 1;
        continue;
      }
      let plain: string;
      try {
        plain = box.open(row.v, aadFor(col, row.id));
      } catch {
        report.failed += 1;
        continue;
      }
      const sealed = box.seal(plain, aadFor(col, row.id));
      await sql`update ${sql.table(col.table)} set ${sql.ref(col.column)} = ${sealed}
        where ${sql.ref(col.id)} = ${row.id} and ${sql.ref(col.column)} = ${row.v}`.execute(db);
      report.rotated += 1;
    }
    out.push(report);
  }
  return out;
}
