import { closeSync, mkdirSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import type CipherSQLite from 'better-sqlite3-multiple-ciphers';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type SqliteDatabase, type Transaction } from 'kysely';
import type pg from 'pg';
import { ConfigError, ConfigErrors, type Config, type DatabaseKind } from '../../config/index.js';
import { migrationProvider } from './migrations/index.js';
import type { Database } from './types.js';

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;

export interface DatabaseHandle {
  db: Db;
  kind: DatabaseKind;
  migrate(): Promise<string[]>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);

/** BIGINT (OID 20) as a JS number: every BIGINT we store is a millisecond timestamp or a counter. */
function pgTypes(types: typeof pg.types) {
  return {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (oid === 20 && format !== 'binary') return (v: string) => Number(v);
      return types.getTypeParser(oid, format as 'text');
    },
  };
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** The first 16 bytes of a database file; null when it does not exist or is empty (a new database). */
export function sqliteFileHeader(file: string): Buffer | null {
  if (file === ':memory:') return null;
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const b = Buffer.alloc(16);
    const n = readSync(fd, b, 0, 16, 0);
    return n === 0 ? null : b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** True when the file is an unencrypted SQLite database (it starts with "SQLite format 3\0"). */
export function isPlainSqliteFile(file: string): boolean {
  return sqliteFileHeader(file)?.equals(SQLITE_HEADER) ?? false;
}

function refuse(variable: string, message: string): never {
  throw new ConfigErrors([new ConfigError(variable, message)]);
}

/** Pragmas every SQLite connection gets (after the key, for an encrypted one). */
function sqlitePragmas(conn: { pragma(s: string): unknown }) {
  conn.pragma('journal_mode = WAL');
  conn.pragma('synchronous = NORMAL');
  conn.pragma('foreign_keys = ON');
  conn.pragma('busy_timeout = 5000');
}

/**
 * Applies SQLCipher 4 settings and the key to a fresh connection of better-sqlite3-multiple-ciphers.
 * Must run before any other statement: the first read of the file decides how its pages are read.
 * The key goes through sqlite3_key (a Buffer), never through SQL text.
 */
export function keySqlcipher(conn: CipherSQLite.Database, password: string): void {
  useSqlcipher4(conn);
  conn.key(Buffer.from(password, 'utf8'));
}

/** Selects the SQLCipher 4 format (cipher, KDF, HMAC and page layout of SQLCipher 4's defaults). */
export function useSqlcipher4(conn: CipherSQLite.Database): void {
  conn.pragma(`cipher = 'sqlcipher'`);
  conn.pragma('legacy = 4');
}

/** better-sqlite3-multiple-ciphers, loaded only when encryption is configured. */
export function cipherSqlite(): typeof CipherSQLite {
  return require('better-sqlite3-multiple-ciphers') as typeof CipherSQLite;
}

/**
 * Opens an encrypted (SQLCipher 4) database file, creating it when it does not exist. Refuses with a
 * ConfigErrors naming the variable when the file is a plain SQLite database (it would otherwise be
 * written in plaintext) or when the password does not open it.
 */
export function openEncryptedSqlite(file: string, password: string): CipherSQLite.Database {
  if (isPlainSqliteFile(file))
    refuse(
      'DATABASE_TYPE',
      `is sqlite+sqlcipher but ${file} is an unencrypted SQLite database. Refusing to open it: HridaAI would keep writing it in plaintext. Convert it with \`hrida-ai db encrypt\` (docs/deployment.md), or unset DATABASE_TYPE and DATABASE_PASSWORD to keep it unencrypted.`,
    );
  const Cipher = cipherSqlite();
  const conn = new Cipher(file);
  try {
    keySqlcipher(conn, password);
    // The first read decrypts page 1: a wrong key fails here, before anything is written.
    conn.prepare('select count(*) from sqlite_master').get();
  } catch (e) {
    conn.close();
    if ((e as { code?: string }).code === 'SQLITE_NOTADB')
      refuse(
        'DATABASE_PASSWORD',
        `does not open the encrypted database ${file}: the password is wrong, or the file is not a SQLCipher 4 database. Nothing was changed.`,
      );
    throw e;
  }
  // Sorts and temporary tables stay in memory: SQLite's temporary files would not be encrypted.
  conn.pragma('temp_store = MEMORY');
  sqlitePragmas(conn);
  return conn;
}

export function openDatabase(
  config: Pick<
    Config,
    | 'database'
    | 'DATABASE_PASSWORD'
    | 'DATABASE_POOL_SIZE'
    | 'DATABASE_POOL_MAX_OVERFLOW'
    | 'DATABASE_POOL_TIMEOUT'
    | 'DATABASE_POOL_RECYCLE'
  >,
): DatabaseHandle {
  const { kind } = config.database;
  let db: Db;
  let encryptedConn: CipherSQLite.Database | null = null;
  if (kind === 'postgresql') {
    // Loaded only when PostgreSQL is configured (it is not needed for SQLite and costs memory).
    const pgLib = require('pg') as typeof pg;
    const pool = new pgLib.Pool({
      connectionString: config.database.url,
      max: config.DATABASE_POOL_SIZE + config.DATABASE_POOL_MAX_OVERFLOW,
      connectionTimeoutMillis: config.DATABASE_POOL_TIMEOUT * 1000,
      idleTimeoutMillis: 30_000,
      maxLifetimeSeconds: config.DATABASE_POOL_RECYCLE,
      types: pgTypes(pgLib.types),
    });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  } else if (config.database.encrypted) {
    const file = config.database.sqlitePath ?? ':memory:';
    if (config.DATABASE_PASSWORD === null) refuse('DATABASE_PASSWORD', 'is required with sqlite+sqlcipher');
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // Opened now, not on the first query, so a wrong password or a plaintext file stops the start.
    const conn = openEncryptedSqlite(file, config.DATABASE_PASSWORD);
    encryptedConn = conn;
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: async () => withStatementCache(conn) }) });
  } else {
    const file = config.database.sqlitePath ?? ':memory:';
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const header = sqliteFileHeader(file);
    if (header && !header.equals(SQLITE_HEADER))
      refuse(
        'DATABASE_TYPE',
        `is not sqlite+sqlcipher, but ${file} is not an unencrypted SQLite database. If it is encrypted, set DATABASE_TYPE=sqlite+sqlcipher and its DATABASE_PASSWORD.`,
      );
    db = new Kysely<Database>({
      dialect: new SqliteDialect({
        database: async () => {
          const conn = new SQLite(file);
          sqlitePragmas(conn);
          return withStatementCache(conn);
        },
      }),
    });
  }

  return {
    db,
    kind,
    async migrate() {
      // PostgreSQL: pin the migration tables to the connection's schema. Without it Kysely looks for
      // them in every schema of the database and skips creating its own when another schema has them.
      const schema =
        kind === 'postgresql'
          ? (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s
          : undefined;
      const migrator = new Migrator({
        db,
        provider: migrationProvider,
        ...(schema ? { migrationTableSchema: schema } : {}),
      });
      let { error, results } = await migrator.migrateToLatest();
      // Kysely's introspection reads every schema of the database; a schema dropped at that moment
      // by someone else (3F000) fails it although ours is fine: try again.
      for (let i = 0; i < 5 && (error as { code?: string } | undefined)?.code === '3F000'; i++)
        ({ error, results } = await migrator.migrateToLatest());
      if (error) throw error instanceof Error ? error : new Error(String(error));
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    },
    async ping() {
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await db.destroy();
      // Opened eagerly: closed here even when no query ever reached Kysely's driver.
      if (encryptedConn?.open) encryptedConn.close();
    },
  };
}

const STATEMENT_CACHE = 500;

/**
 * The SQLite connection as Kysely's driver sees it, with prepared statements reused by SQL text
 * (least recently used dropped beyond 500). Kysely prepares every query afresh; the same queries
 * run again and again (sessions, keys, the usage ledger's batch insert), and preparing costs more
 * than running them. Safe because Kysely holds the connection's mutex while a statement runs or
 * iterates, so one statement is never used twice at once; SQLite re-prepares a cached statement
 * by itself after a schema change.
 */
function withStatementCache(conn: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(text: string) {
      let stmt = cache.get(text);
      if (stmt) {
        cache.delete(text);
      } else {
        stmt = conn.prepare(text);
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
      }
      cache.set(text, stmt);
      return stmt;
    },
    close() {
      cache.clear();
      conn.close();
    },
  };
}

/** True when an error is a unique-constraint violation in either engine. */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}

/**
 * Keyset paging condition "after this row" in (created_at, id) order: `created > a.created_at or
 * (created = a.created_at and id > a.id)`. Column names may be qualified (`chats.created_at`).
 */
export function afterKey(createdCol: string, idCol: string, a: { created_at: number; id: string }) {
  const created = sql.ref(createdCol);
  return sql<boolean>`(${created} > ${a.created_at} or (${created} = ${a.created_at} and ${sql.ref(idCol)} > ${a.id}))`;
}
