import type { Kysely } from 'kysely';

/**
 * Conversations and personal data: folders, chats, messages, share-link snapshots, memories and
 * the memory preference; the file-deletion journal (erasure survives a crash) and job leases (one
 * runner of a periodic job at a time across instances).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('chat_folders')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('chat_folders_user_idx').on('chat_folders').column('user_id').execute();

  await db.schema
    .createTable('chats')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    /** Always a folder of the same user (checked in the same statement that sets it). */
    .addColumn('folder_id', 'varchar(64)', (c) => c.references('chat_folders.id').onDelete('set null'))
    .addColumn('title', 'varchar(500)', (c) => c.notNull())
    .addColumn('pinned', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('archived', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('chats_user_updated_idx').on('chats').columns(['user_id', 'updated_at']).execute();
  await db.schema.createIndex('chats_updated_idx').on('chats').column('updated_at').execute();
  await db.schema.createIndex('chats_folder_idx').on('chats').column('folder_id').execute();

  await db.schema
    .createTable('chat_messages')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('chat_id', 'varchar(64)', (c) => c.notNull().references('chats.id').onDelete('cascade'))
    /** The chat's owner, repeated so that every message query carries the owner in its WHERE. */
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    /** JSON: a string or an array of content parts, as the UI or the API produced it. */
    .addColumn('content', 'text', (c) => c.notNull())
    /** Plain text of `content`, for search. */
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('model', 'varchar(256)')
    /** JSON object (prompt_tokens, completion_tokens, total_tokens, …) or null. */
    .addColumn('usage', 'text')
    /** JSON object: name, tool_calls, tool_call_id, … or null. */
    .addColumn('meta', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('chat_messages_chat_seq_uq', ['chat_id', 'seq'])
    .execute();
  await db.schema.createIndex('chat_messages_user_idx').on('chat_messages').column('user_id').execute();

  await db.schema
    .createTable('chat_shares')
    /** The share id itself: 192 random bits, base64url. */
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('chat_id', 'varchar(64)', (c) => c.notNull().unique().references('chats.id').onDelete('cascade'))
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    /** JSON snapshot {title, messages} taken when the link was created or refreshed. */
    .addColumn('snapshot', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('chat_shares_user_idx').on('chat_shares').column('user_id').execute();

  await db.schema
    .createTable('memories')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('memories_user_idx').on('memories').columns(['user_id', 'updated_at']).execute();

  await db.schema
    .createTable('memory_preferences')
    .addColumn('user_id', 'varchar(64)', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('inject_into_chats', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('pending_file_deletions')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    /** Path relative to DATA_DIR; refused at processing time if it leaves DATA_DIR. */
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('reason', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'varchar(500)')
    .execute();

  await db.schema
    .createTable('job_leases')
    .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('holder', 'varchar(64)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'job_leases',
    'pending_file_deletions',
    'memory_preferences',
    'memories',
    'chat_shares',
    'chat_messages',
    'chats',
    'chat_folders',
  ])
    await db.schema.dropTable(t).execute();
}
