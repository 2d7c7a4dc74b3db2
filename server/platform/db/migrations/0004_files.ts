import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * Files (uploads stored under DATA_DIR with random names), profile images, knowledge bases, their
 * documents and chunks, and the full-text index over the chunks: an FTS5 table kept in step by
 * triggers on SQLite, a generated tsvector column with a GIN index on PostgreSQL.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const isPg = db.getExecutor().adapter instanceof PostgresAdapter;

  await db.schema
    .createTable('files')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('filename', 'varchar(512)', (c) => c.notNull())
    .addColumn('ext', 'varchar(32)', (c) => c.notNull())
    .addColumn('content_type', 'varchar(128)', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('storage_name', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('files_user_idx').on('files').columns(['user_id', 'created_at']).execute();

  await db.schema
    .createTable('profile_images')
    .addColumn('user_id', 'varchar(64)', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('content_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('knowledge_bases')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('knowledge_bases_user_idx').on('knowledge_bases').column('user_id').execute();

  await db.schema
    .createTable('knowledge_documents')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('knowledge_id', 'varchar(64)', (c) => c.notNull().references('knowledge_bases.id').onDelete('cascade'))
    .addColumn('file_id', 'varchar(64)', (c) => c.references('files.id').onDelete('cascade'))
    .addColumn('source_type', 'varchar(16)', (c) => c.notNull())
    .addColumn('source_url', 'text')
    .addColumn('title', 'varchar(512)', (c) => c.notNull())
    .addColumn('content_type', 'varchar(128)', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('chunk_count', 'integer', (c) => c.notNull())
    .addColumn('added_by', 'varchar(64)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('knowledge_documents_file_uq', ['knowledge_id', 'file_id'])
    .execute();
  await db.schema.createIndex('knowledge_documents_kb_idx').on('knowledge_documents').column('knowledge_id').execute();
  await db.schema.createIndex('knowledge_documents_file_idx').on('knowledge_documents').column('file_id').execute();

  await db.schema
    .createTable('knowledge_chunks')
    .addColumn('id', isPg ? 'bigserial' : 'integer', (c) => (isPg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('document_id', 'varchar(64)', (c) =>
      c.notNull().references('knowledge_documents.id').onDelete('cascade'),
    )
    .addColumn('knowledge_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    /** JSON array of floats when an embeddings connection is used; null otherwise. */
    .addColumn('embedding', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('knowledge_chunks_doc_idx')
    .on('knowledge_chunks')
    .columns(['document_id', 'seq'])
    .execute();
  await db.schema.createIndex('knowledge_chunks_kb_idx').on('knowledge_chunks').column('knowledge_id').execute();

  if (isPg) {
    await sql`alter table knowledge_chunks add column tsv tsvector generated always as (to_tsvector('english', text)) stored`.execute(
      db,
    );
    await sql`create index knowledge_chunks_tsv_idx on knowledge_chunks using gin (tsv)`.execute(db);
  } else {
    await sql`create virtual table knowledge_chunks_fts using fts5(text, content='knowledge_chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')`.execute(
      db,
    );
    await sql`create trigger knowledge_chunks_ai after insert on knowledge_chunks begin
      insert into knowledge_chunks_fts(rowid, text) values (new.id, new.text);
    end`.execute(db);
    await sql`create trigger knowledge_chunks_ad after delete on knowledge_chunks begin
      insert into knowledge_chunks_fts(knowledge_chunks_fts, rowid, text) values ('delete', old.id, old.text);
    end`.execute(db);
    await sql`create trigger knowledge_chunks_au after update of text on knowledge_chunks begin
      insert into knowledge_chunks_fts(knowledge_chunks_fts, rowid, text) values ('delete', old.id, old.text);
      insert into knowledge_chunks_fts(rowid, text) values (new.id, new.text);
    end`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const isPg = db.getExecutor().adapter instanceof PostgresAdapter;
  if (!isPg) await sql`drop table if exists knowledge_chunks_fts`.execute(db);
  for (const t of ['knowledge_chunks', 'knowledge_documents', 'knowledge_bases', 'profile_images', 'files'])
    await db.schema.dropTable(t).ifExists().execute();
}
