import type { Kysely } from 'kysely';

/**
 * Model gateway: upstream connections (secrets sealed at rest), presets ("workspace models"),
 * limit and budget rows, and the usage ledger.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('model_connections')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    /** null: configured by an admin, used for everyone; a user id: that user's direct connection. */
    .addColumn('owner_id', 'varchar(64)', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('type', 'varchar(16)', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('base_url', 'varchar(2048)', (c) => c.notNull())
    /** Sealed envelopes (platform/security/secretbox.ts), never plaintext. */
    .addColumn('api_key_enc', 'text')
    .addColumn('headers_enc', 'text')
    .addColumn('prefix_id', 'varchar(64)')
    /** JSON array of upstream model ids: the allowlist (empty: every discovered model). */
    .addColumn('model_ids', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_by', 'varchar(64)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('model_connections_owner_idx').on('model_connections').column('owner_id').execute();

  await db.schema
    .createTable('model_presets')
    .addColumn('id', 'varchar(256)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('base_model_id', 'varchar(256)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('system_prompt', 'text')
    /** JSON object of completion parameters (temperature, top_p, max_tokens, …). */
    .addColumn('params', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('owner_id', 'varchar(64)', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('is_active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('model_presets_base_idx').on('model_presets').column('base_model_id').execute();

  await db.schema
    .createTable('gateway_limits')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    /** user | group | key | model */
    .addColumn('scope', 'varchar(16)', (c) => c.notNull())
    .addColumn('subject_id', 'varchar(256)', (c) => c.notNull())
    /** null: inherit (group, then the settings default); 0: no limit. */
    .addColumn('requests_per_minute', 'bigint')
    .addColumn('tokens_per_minute', 'bigint')
    .addColumn('concurrent_requests', 'bigint')
    .addColumn('tokens_per_day', 'bigint')
    .addColumn('tokens_per_month', 'bigint')
    .addColumn('updated_by', 'varchar(64)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('gateway_limits_subject_uq', ['scope', 'subject_id'])
    .execute();

  await db.schema
    .createTable('gateway_usage')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('request_id', 'varchar(64)', (c) => c.notNull())
    /** chat | passthrough */
    .addColumn('route', 'varchar(32)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('actor_id', 'varchar(64)')
    .addColumn('key_id', 'varchar(64)')
    /** The model the client asked for (a preset or a connection model). */
    .addColumn('model_id', 'varchar(256)')
    /** The connection model actually dispatched, as clients name it. */
    .addColumn('base_model_id', 'varchar(256)')
    .addColumn('connection_id', 'varchar(64)')
    .addColumn('prompt_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('completion_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('total_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    /** upstream: reported by the upstream; estimated: counted by HridaAI (no usage frame arrived). */
    .addColumn('usage_source', 'varchar(16)', (c) => c.notNull())
    /** completed | error | aborted */
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('http_status', 'integer', (c) => c.notNull())
    .addColumn('stream', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('ttft_ms', 'integer')
    .execute();
  await db.schema.createIndex('gateway_usage_created_idx').on('gateway_usage').column('created_at').execute();
  await db.schema
    .createIndex('gateway_usage_user_idx')
    .on('gateway_usage')
    .columns(['user_id', 'created_at'])
    .execute();
  await db.schema.createIndex('gateway_usage_key_idx').on('gateway_usage').columns(['key_id', 'created_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['gateway_usage', 'gateway_limits', 'model_presets', 'model_connections'])
    await db.schema.dropTable(t).execute();
}
