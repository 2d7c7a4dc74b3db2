/** Reads the live schema of a test app (both engines) and scans every table for a value. */
import { sql } from 'kysely';
import type { TestApp } from '../harness.js';

export interface Column {
  table: string;
  column: string;
}

export async function listColumns(app: TestApp): Promise<Column[]> {
  const db = app.ctx.db;
  if (app.ctx.dbKind === 'postgresql') {
    const r = await sql<{ table: string; column: string }>`select c.table_name as "table", c.column_name as "column"
      from information_schema.columns c
      join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = current_schema() and t.table_type = 'BASE TABLE'
      order by c.table_name, c.ordinal_position`.execute(db);
    return r.rows.filter((x) => !x.table.startsWith('kysely_'));
  }
  const tables = await sql<{
    name: string;
    sql: string | null;
  }>`select name, sql from sqlite_master where type = 'table'`.execute(db);
  const virtual = tables.rows.filter((t) => /^create virtual table/i.test(t.sql ?? '')).map((t) => t.name);
  const out: Column[] = [];
  for (const t of tables.rows) {
    if (t.name.startsWith('sqlite_') || t.name.startsWith('kysely_')) continue;
    // Virtual tables and their shadow tables hold index data derived from ordinary tables.
    if (virtual.some((v) => t.name === v || t.name.startsWith(`${v}_`))) continue;
    const cols = await sql<{ name: string }>`select name from pragma_table_info(${t.name})`.execute(db);
    for (const c of cols.rows) out.push({ table: t.name, column: c.name });
  }
  return out;
}

export async function listTables(app: TestApp): Promise<string[]> {
  return [...new Set((await listColumns(app)).map((c) => c.table))].sort();
}

/** Every (table, column, rows) whose text contains `value`, outside `exceptTables`. */
export async function scanFor(
  app: TestApp,
  value: string,
  exceptTables: readonly string[] = [],
): Promise<{ table: string; column: string; rows: number }[]> {
  const db = app.ctx.db;
  const hits: { table: string; column: string; rows: number }[] = [];
  const pattern = `%${value.toLowerCase()}%`;
  for (const c of await listColumns(app)) {
    if (exceptTables.includes(c.table)) continue;
    const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(c.table)}
      where lower(cast(${sql.ref(c.column)} as text)) like ${pattern}`.execute(db);
    const n = Number(r.rows[0]?.n ?? 0);
    if (n > 0) hits.push({ table: c.table, column: c.column, rows: n });
  }
  return hits;
}

export async function countRows(app: TestApp, table: string): Promise<number> {
  const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(app.ctx.db);
  return Number(r.rows[0]?.n ?? 0);
}
