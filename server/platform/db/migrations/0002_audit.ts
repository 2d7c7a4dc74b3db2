import { PostgresAdapter, sql, type Kysely } from 'kysely';

/** 64 zeros: the `prev_hash` of the first entry of the audit chain. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The audit trail: hash-chained `audit_events`, the chain head and sealed segment checkpoints.
 * Triggers make `audit_events` append-only at the database level: no UPDATE, no TRUNCATE, and a
 * DELETE only of rows inside a segment already marked pruned (what retention does).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_events')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('action', 'varchar(128)', (c) => c.notNull())
    .addColumn('actor_id', 'varchar(64)')
    .addColumn('subject_id', 'varchar(64)')
    .addColumn('resource_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('resource_id', 'varchar(256)')
    .addColumn('result', 'varchar(16)', (c) => c.notNull())
    .addColumn('ip', 'varchar(64)')
    .addColumn('request_id', 'varchar(64)')
    .addColumn('before', 'text')
    .addColumn('after', 'text')
    .addColumn('details', 'text')
    .addColumn('prev_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_events_created_idx').on('audit_events').column('created_at').execute();
  await db.schema.createIndex('audit_events_actor_idx').on('audit_events').columns(['actor_id', 'seq']).execute();
  await db.schema.createIndex('audit_events_action_idx').on('audit_events').columns(['action', 'seq']).execute();
  await db.schema
    .createIndex('audit_events_resource_idx')
    .on('audit_events')
    .columns(['resource_type', 'resource_id', 'seq'])
    .execute();

  await db.schema
    .createTable('audit_chain')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await sql`insert into audit_chain (id, seq, hash, updated_at) values (1, 0, ${GENESIS_HASH}, 0)`.execute(db);

  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('last_seq', 'bigint', (c) => c.primaryKey())
    .addColumn('first_seq', 'bigint', (c) => c.notNull())
    .addColumn('last_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('first_created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_created_at', 'bigint', (c) => c.notNull())
    .addColumn('row_count', 'bigint', (c) => c.notNull())
    .addColumn('sealed_at', 'bigint', (c) => c.notNull())
    .addColumn('pruned_at', 'bigint')
    .execute();

  const isPg = db.getExecutor().adapter instanceof PostgresAdapter;
  if (isPg) {
    await sql`
      create function audit_events_guard() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          if old.seq <= (select coalesce(max(last_seq), 0) from audit_checkpoints where pruned_at is not null) then
            return old;
          end if;
        end if;
        raise exception 'audit_events is append-only (% refused)', tg_op;
      end
      $$`.execute(db);
    await sql`create trigger audit_events_guard before update or delete on audit_events
      for each row execute function audit_events_guard()`.execute(db);
    await sql`create trigger audit_events_no_truncate before truncate on audit_events
      for each statement execute function audit_events_guard()`.execute(db);
  } else {
    await sql`create trigger audit_events_no_update before update on audit_events
      begin select raise(abort, 'audit_events is append-only (UPDATE refused)'); end`.execute(db);
    await sql`create trigger audit_events_no_delete before delete on audit_events
      when old.seq > (select coalesce(max(last_seq), 0) from audit_checkpoints where pruned_at is not null)
      begin select raise(abort, 'audit_events is append-only (DELETE refused)'); end`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const isPg = db.getExecutor().adapter instanceof PostgresAdapter;
  for (const t of ['audit_checkpoints', 'audit_chain', 'audit_events']) await db.schema.dropTable(t).execute();
  if (isPg) await sql`drop function if exists audit_events_guard()`.execute(db);
}
