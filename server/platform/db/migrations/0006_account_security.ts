import type { Kysely } from 'kysely';

/**
 * Account security: per-user security state (TOTP secret sealed at rest, forced password change),
 * hashed one-time recovery codes, two-factor sign-in challenges and the login limiter's counters.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('user_security')
    .addColumn('user_id', 'varchar(64)', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    /** Sealed (AES-256-GCM, see platform/security/secretbox.ts) base32 TOTP secret once confirmed. */
    .addColumn('totp_secret_enc', 'text')
    .addColumn('totp_enabled_at', 'bigint')
    /** Sealed secret of an enrolment that has not been confirmed with a first code yet. */
    .addColumn('totp_pending_enc', 'text')
    .addColumn('totp_pending_at', 'bigint')
    /** Highest TOTP time step accepted so far: a code is accepted only for a later step (no replay). */
    .addColumn('totp_last_step', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('password_reset_by', 'varchar(64)')
    .addColumn('password_reset_at', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('recovery_codes')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    /** HMAC-SHA256 (key derived from the root key named by `kid`) of the normalised code, hex. */
    .addColumn('code_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('kid', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('recovery_codes_user_idx')
    .on('recovery_codes')
    .columns(['user_id', 'code_hash'])
    .execute();

  await db.schema
    .createTable('two_factor_challenges')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    /** Session kind to create once the code is right (`password`, `ldap`). */
    .addColumn('kind', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('consumed_at', 'bigint')
    .addColumn('ip', 'varchar(64)')
    .execute();
  await db.schema
    .createIndex('two_factor_challenges_exp_idx')
    .on('two_factor_challenges')
    .column('expires_at')
    .execute();

  await db.schema
    .createTable('login_attempts')
    /** `a_<hash of the identifier>` (account) or `i_<hash of the address or /64>` (client address). */
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('label', 'varchar(400)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)')
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lockouts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('refused', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_failure_at', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('next_at', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('login_attempts_exp_idx').on('login_attempts').column('expires_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['login_attempts', 'two_factor_challenges', 'recovery_codes', 'user_security'])
    await db.schema.dropTable(t).execute();
}
