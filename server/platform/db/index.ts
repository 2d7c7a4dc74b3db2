import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import type pg from 'pg';
import type { Config, DatabaseKind } from '../../config/index.js';
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

export function openDatabase(
  config: Pick<
    Config,
    'database' | 'DATABASE_POOL_SIZE' | 'DATABASE_POOL_MAX_OVERFLOW' | 'DATABASE_POOL_TIMEOUT' | 'DATABASE_POOL_RECYCLE'
  >,
): DatabaseHandle {
  const { kind } = config.database;
  let db: Db;
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
  } else {
    const file = config.database.sqlitePath ?? ':memory:';
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    db = new Kysely<Database>({
      dialect: new SqliteDialect({
        database: async () => {
          const conn = new SQLite(file);
          conn.pragma('journal_mode = WAL');
          conn.pragma('synchronous = NORMAL');
          conn.pragma('foreign_keys = ON');
          conn.pragma('busy_timeout = 5000');
          return conn;
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
