import { chmodSync, closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import SQLite from 'better-sqlite3';
import { cipherSqlite, isPlainSqliteFile, openEncryptedSqlite, sqliteFileHeader, useSqlcipher4 } from './index.js';

/** A conversion that cannot be done; the message says why and what to do. Nothing was changed. */
export class EncryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncryptError';
  }
}

export type EncryptReport =
  | { status: 'already-encrypted'; file: string }
  | { status: 'encrypted'; file: string; plaintextCopy: string; tables: number; rows: number };

function fsyncFile(file: string) {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function rowCounts(conn: { prepare(s: string): { all(): unknown[]; get(): unknown } }): Map<string, number> {
  const tables = conn
    .prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`)
    .all() as { name: string }[];
  const counts = new Map<string, number>();
  for (const { name } of tables) {
    const r = conn.prepare(`select count(*) as n from "${name.replaceAll('"', '""')}"`).get() as { n: number };
    counts.set(name, r.n);
  }
  return counts;
}

function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/**
 * Converts the plain SQLite database `file` into a SQLCipher 4 database keyed by `password`, in
 * place. Steps: take the database for ourselves (refused while any other process has it open),
 * copy it with VACUUM INTO next to it, encrypt the copy (rekey), check the copy opens with the
 * password, passes integrity_check and has the same row count in every table, then move the
 * original aside as `<file>.unencrypted-<time>` and the encrypted copy into its place.
 * The unencrypted original is kept (the caller reports where) so nothing is lost if anything
 * after the swap goes wrong; deleting it is the administrator's decision.
 */
export function encryptSqliteFile(file: string, password: string, now = new Date()): EncryptReport {
  const header = sqliteFileHeader(file);
  if (!header)
    throw new EncryptError(
      `No database at ${file}: nothing to convert. With DATABASE_TYPE=sqlite+sqlcipher HridaAI creates an encrypted database on its first start.`,
    );
  if (!isPlainSqliteFile(file)) {
    try {
      openEncryptedSqlite(file, password).close();
    } catch {
      throw new EncryptError(
        `${file} is not an unencrypted SQLite database, and DATABASE_PASSWORD does not open it as an encrypted one. Nothing was changed.`,
      );
    }
    return { status: 'already-encrypted', file };
  }

  const tmp = `${file}.encrypting`;
  const plaintextCopy = `${file}.unencrypted-${stamp(now)}`;
  if (existsSync(plaintextCopy)) throw new EncryptError(`${plaintextCopy} already exists; try again in a second.`);
  const mode = statSync(file).mode & 0o777;

  const src = new SQLite(file, { timeout: 0 });
  let srcOpen = true;
  const cleanTmp = () => {
    for (const f of [tmp, `${tmp}-journal`, `${tmp}-wal`, `${tmp}-shm`]) rmSync(f, { force: true });
  };
  try {
    // Leaving WAL mode needs the database to ourselves: it fails while a server (or any other
    // process) has it open. The exclusive locking mode then keeps a lock until we close, so no
    // other process can write while the copy is made and checked.
    try {
      src.pragma('journal_mode = DELETE');
      src.pragma('locking_mode = EXCLUSIVE');
      src.prepare('select count(*) from sqlite_master').get(); // takes the lock, kept until close
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY')
        throw new EncryptError(
          `${file} is in use by another process. Stop HridaAI (every instance) and run this command again. Nothing was changed.`,
        );
      throw e;
    }
    const before = rowCounts(src);

    cleanTmp();
    src.prepare('VACUUM INTO ?').run(tmp);
    chmodSync(tmp, mode);

    const Cipher = cipherSqlite();
    const enc = new Cipher(tmp);
    try {
      enc.pragma('journal_mode = DELETE'); // rekey rewrites every page; it cannot run in WAL mode
      useSqlcipher4(enc);
      enc.rekey(Buffer.from(password, 'utf8'));
    } finally {
      enc.close();
    }
    if (isPlainSqliteFile(tmp)) throw new EncryptError('The copy was not encrypted. Nothing was changed.');

    const check = openEncryptedSqlite(tmp, password); // also switches the copy to WAL, like the server
    try {
      const integrity = check.pragma('integrity_check') as { integrity_check: string }[];
      if (integrity.length !== 1 || integrity[0]?.integrity_check !== 'ok')
        throw new EncryptError(`The encrypted copy fails integrity_check. Nothing was changed.`);
      const after = rowCounts(check);
      const same = after.size === before.size && [...before].every(([t, n]) => after.get(t) === n);
      if (!same) throw new EncryptError('The encrypted copy does not hold the same rows. Nothing was changed.');
      check.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      check.close();
    }
    fsyncFile(tmp);

    src.close();
    srcOpen = false;
    renameSync(file, plaintextCopy);
    // A journal left by the plain database belongs to it, never to the encrypted one.
    for (const ext of ['-wal', '-shm', '-journal'])
      if (existsSync(file + ext)) renameSync(file + ext, plaintextCopy + ext);
    try {
      renameSync(tmp, file);
    } catch (e) {
      renameSync(plaintextCopy, file);
      throw e;
    }
    const rows = [...before.values()].reduce((a, b) => a + b, 0);
    return { status: 'encrypted', file, plaintextCopy, tables: before.size, rows };
  } catch (e) {
    if (existsSync(file)) cleanTmp();
    throw e;
  } finally {
    if (srcOpen) src.close();
  }
}
