import type { Kysely } from 'kysely';

/**
 * Knowledge attached to presets: JSON arrays of knowledge-base and file ids. At use time only
 * what the caller may read is retrieved.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('model_presets').addColumn('knowledge_ids', 'text').execute();
  await db.schema.alterTable('model_presets').addColumn('file_ids', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('model_presets').dropColumn('file_ids').execute();
  await db.schema.alterTable('model_presets').dropColumn('knowledge_ids').execute();
}
