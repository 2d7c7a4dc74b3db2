import { sql, type Kysely } from 'kysely';

/**
 * Knowledge embeddings name their model and are filled in by a background worker.
 *
 * - `embedding_model`: the model `embedding` was computed with (RAG_EMBEDDING_MODEL as clients see
 *   it); for a chunk without embedding, the model its failed attempts were made with.
 * - `embed_attempts`: failed attempts with that model whose content the upstream rejected.
 * - `embed_claim` / `embed_claimed_at`: the worker that is embedding the chunk right now (a claim
 *   token and when it was taken), so two instances never embed the same chunk at once.
 *
 * Vectors stored before this migration do not say which model made them: they are cleared, and the
 * worker embeds those chunks again with the configured model.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('knowledge_chunks').addColumn('embedding_model', 'varchar(256)').execute();
  await db.schema
    .alterTable('knowledge_chunks')
    .addColumn('embed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('knowledge_chunks').addColumn('embed_claim', 'varchar(64)').execute();
  await db.schema.alterTable('knowledge_chunks').addColumn('embed_claimed_at', 'bigint').execute();
  await sql`update knowledge_chunks set embedding = null where embedding is not null`.execute(db);
  // The worker's queue: chunks without a vector (new, re-indexed, failed), fewest failures first.
  await sql`create index knowledge_chunks_embed_todo_idx on knowledge_chunks (embed_attempts, id) where embedding is null`.execute(
    db,
  );
  // Chunks with a vector, by model: similarity search and chunks embedded with another model.
  await sql`create index knowledge_chunks_embed_model_idx on knowledge_chunks (embedding_model, id) where embedding is not null`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists knowledge_chunks_embed_model_idx`.execute(db);
  await sql`drop index if exists knowledge_chunks_embed_todo_idx`.execute(db);
  for (const c of ['embed_claimed_at', 'embed_claim', 'embed_attempts', 'embedding_model'])
    await db.schema.alterTable('knowledge_chunks').dropColumn(c).execute();
}
