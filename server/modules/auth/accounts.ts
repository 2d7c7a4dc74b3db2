import { randomUUID } from 'node:crypto';
import type { Config } from '../../config/index.js';
import { isUniqueViolation, type Db, type Trx } from '../../platform/db/index.js';
import type { User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { passwordTooLong } from '../../platform/security/passwords.js';

export type Role = User['role'];

/** The password rules, applied on every path that sets a password. */
export function checkPasswordRules(config: Config, password: string): void {
  if (password.length === 0) throw new AppError('password_too_weak', 'The password must not be empty');
  if (passwordTooLong(password))
    throw new AppError(
      'password_too_long',
      'The password is longer than 72 bytes; bcrypt cannot use the rest, so HridaAI refuses it instead of truncating it',
    );
  if (config.passwordRegex && !config.passwordRegex.test(password))
    throw new AppError(
      'password_too_weak',
      config.PASSWORD_VALIDATION_HINT || 'The password does not meet the password policy',
    );
}

const FIRST_ADMIN_KEY = 'first_admin';

/**
 * The first-admin rule, shared by every way an account can be created (sign-up, HRIDAAI_ADMIN_*,
 * and later SSO, LDAP, SCIM): inside the creating transaction, the account that manages to insert
 * the `first_admin` row becomes admin. A unique key makes this exact under concurrency on both
 * engines (PostgreSQL blocks the second insert until the first commits, SQLite serialises writers).
 */
export async function claimFirstAdmin(trx: Trx, userId: string): Promise<boolean> {
  const r = await trx
    .insertInto('app_state')
    .values({ key: FIRST_ADMIN_KEY, value: userId, updated_at: Date.now() })
    .onConflict((oc) => oc.column('key').doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function hasAnyUser(db: Db | Trx): Promise<boolean> {
  const row = await db.selectFrom('app_state').select('key').where('key', '=', FIRST_ADMIN_KEY).executeTakeFirst();
  return row !== undefined;
}

export interface ProvisionInput {
  email: string;
  name: string;
  passwordHash: string | null;
  provider: string;
  subject: string | null;
  /** Role when this is not the first account; `null` refuses (sign-up closed). */
  roleIfNotFirst: Role | null;
}

/** Creates an account (and its identity) inside `trx`, applying the first-admin rule. */
export async function provisionUser(trx: Trx, input: ProvisionInput): Promise<User> {
  const id = randomUUID();
  const first = await claimFirstAdmin(trx, id);
  const role: Role | null = first ? 'admin' : input.roleIfNotFirst;
  if (role === null) throw new AppError('signup_disabled', 'Sign-up is closed; ask an administrator for an account');
  const now = Date.now();
  const user: User = {
    id,
    email: input.email.toLowerCase(),
    name: input.name,
    role,
    active: 1,
    password_hash: input.passwordHash,
    profile_image_url: null,
    settings: '{}',
    created_at: now,
    updated_at: now,
    last_active_at: null,
  };
  try {
    await trx.insertInto('users').values(user).execute();
    await trx
      .insertInto('identities')
      .values({
        id: randomUUID(),
        user_id: id,
        provider: input.provider,
        subject: input.subject ?? id,
        created_at: now,
      })
      .execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw new AppError('email_taken', 'An account with this e-mail already exists');
    throw e;
  }
  return user;
}

/**
 * Locks the set of admins for the rest of the transaction (PostgreSQL: row locks; SQLite: writers
 * are already serialised) and returns how many active admins there are besides `exceptId`.
 */
export async function otherActiveAdmins(trx: Trx, kind: 'sqlite' | 'postgresql', exceptId: string): Promise<number> {
  let q = trx.selectFrom('users').select('id').where('role', '=', 'admin').where('active', '=', 1);
  if (kind === 'postgresql') q = q.forUpdate();
  const rows = await q.execute();
  return rows.filter((r) => r.id !== exceptId).length;
}
