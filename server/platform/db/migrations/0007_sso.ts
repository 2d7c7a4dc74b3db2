import type { Kysely } from 'kysely';

/**
 * Single sign-on and directory: pending OAuth authorisations (state, nonce and PKCE verifier bound
 * server-side), the IdP session behind each HridaAI session (back-channel logout), the replay cache
 * of logout tokens, and the SCIM attributes of provisioned users and groups.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('oauth_states')
    /** sha256 (hex) of the random value in the short-lived `oauth_state` cookie. */
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('provider', 'varchar(64)', (c) => c.notNull())
    .addColumn('state', 'varchar(128)', (c) => c.notNull())
    .addColumn('nonce', 'varchar(128)')
    .addColumn('code_verifier', 'varchar(128)', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oauth_states_expires_idx').on('oauth_states').column('expires_at').execute();

  await db.schema
    .createTable('sso_sessions')
    .addColumn('session_id', 'varchar(64)', (c) => c.primaryKey().references('sessions.id').onDelete('cascade'))
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('provider', 'varchar(64)', (c) => c.notNull())
    .addColumn('subject', 'varchar(512)', (c) => c.notNull())
    .addColumn('idp_sid', 'varchar(255)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('sso_sessions_sid_idx').on('sso_sessions').columns(['provider', 'idp_sid']).execute();
  await db.schema.createIndex('sso_sessions_sub_idx').on('sso_sessions').columns(['provider', 'subject']).execute();

  await db.schema
    .createTable('oidc_logout_jtis')
    .addColumn('provider', 'varchar(64)', (c) => c.notNull())
    .addColumn('jti', 'varchar(255)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('oidc_logout_jtis_pk', ['provider', 'jti'])
    .execute();
  await db.schema.createIndex('oidc_logout_jtis_expires_idx').on('oidc_logout_jtis').column('expires_at').execute();

  await db.schema
    .createTable('scim_users')
    .addColumn('user_id', 'varchar(64)', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('user_name', 'varchar(320)', (c) => c.notNull())
    /** Lower-cased userName (SCIM userName is case-insensitive and unique). */
    .addColumn('user_name_key', 'varchar(320)', (c) => c.notNull().unique())
    .addColumn('external_id', 'varchar(512)')
    .addColumn('given_name', 'varchar(200)')
    .addColumn('family_name', 'varchar(200)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('scim_users_external_idx').on('scim_users').column('external_id').execute();

  await db.schema
    .createTable('scim_groups')
    .addColumn('group_id', 'varchar(64)', (c) => c.primaryKey().references('groups.id').onDelete('cascade'))
    .addColumn('external_id', 'varchar(512)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['scim_groups', 'scim_users', 'oidc_logout_jtis', 'sso_sessions', 'oauth_states'])
    await db.schema.dropTable(t).execute();
}
