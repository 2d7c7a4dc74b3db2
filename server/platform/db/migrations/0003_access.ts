import type { Kysely } from 'kysely';

/**
 * Access control: groups and their members, per-resource grants, API keys (stored only as a
 * peppered HMAC) and impersonation records.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('groups')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    /** Lower-cased name: unique whatever the case. */
    .addColumn('name_key', 'varchar(200)', (c) => c.notNull().unique())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    /** JSON object: feature permission name → true. A group can only grant, never take away. */
    .addColumn('permissions', 'text', (c) => c.notNull().defaultTo('{}'))
    /** `local` (made in HridaAI); identity-provider sync uses its own source and touches only its groups. */
    .addColumn('source', 'varchar(64)', (c) => c.notNull().defaultTo('local'))
    .addColumn('created_by', 'varchar(64)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('group_members')
    .addColumn('group_id', 'varchar(64)', (c) => c.notNull().references('groups.id').onDelete('cascade'))
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('source', 'varchar(64)', (c) => c.notNull().defaultTo('local'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'user_id'])
    .execute();
  await db.schema.createIndex('group_members_user_idx').on('group_members').column('user_id').execute();

  await db.schema
    .createTable('resource_grants')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('resource_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('resource_id', 'varchar(256)', (c) => c.notNull())
    .addColumn('principal_type', 'varchar(16)', (c) => c.notNull())
    .addColumn('principal_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('permission', 'varchar(16)', (c) => c.notNull())
    .addColumn('granted_by', 'varchar(64)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('resource_grants_uq', ['resource_type', 'resource_id', 'principal_type', 'principal_id'])
    .execute();
  await db.schema
    .createIndex('resource_grants_principal_idx')
    .on('resource_grants')
    .columns(['principal_type', 'principal_id', 'resource_type'])
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    /** HMAC-SHA256(pepper, key), hex. The pepper is derived from the root key named by pepper_kid. */
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('pepper_kid', 'varchar(32)', (c) => c.notNull())
    /** Last four characters of the secret, to tell keys apart in lists. */
    .addColumn('hint', 'varchar(8)', (c) => c.notNull())
    .addColumn('allowed_endpoints', 'text')
    .addColumn('allowed_models', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('rotated_at', 'bigint')
    .addColumn('expires_at', 'bigint')
    .addColumn('last_used_at', 'bigint')
    .execute();
  await db.schema.createIndex('api_keys_user_idx').on('api_keys').column('user_id').execute();

  await db.schema
    .createTable('impersonations')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    /** The session row of the impersonation token (user_id = subject, actor_id = admin). */
    .addColumn('session_id', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('admin_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('admin_session_id', 'varchar(64)')
    .addColumn('reason', 'varchar(1000)', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint')
    .addColumn('ended_reason', 'varchar(64)')
    .execute();
  await db.schema.createIndex('impersonations_admin_idx').on('impersonations').column('admin_id').execute();
  await db.schema.createIndex('impersonations_user_idx').on('impersonations').column('user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['impersonations', 'api_keys', 'resource_grants', 'group_members', 'groups'])
    await db.schema.dropTable(t).execute();
}
