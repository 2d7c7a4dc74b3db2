import { sql, type RawBuilder } from 'kysely';

/**
 * The erasure plan: for every table column that can point at a user, what erasing that user does
 * to the rows that point at them. `eraseUser` executes the entries in order, in one transaction;
 * the privacy tests list every table and column of the live schema that looks like a user
 * reference (`*user_id`, `owner_id`, `principal_id`, `actor_id`, `admin_id`, `subject_id`,
 * `*_by`) and fail when one is missing here, then erase a seeded user and scan every table for
 * the user's id and e-mail address.
 *
 *   delete     the row belongs to the user (their data): removed
 *   null       the row belongs to the organisation, the user only touched it (created_by…): the
 *              pointer is cleared, the row kept
 *   anonymise  the row is kept for aggregate figures with every link to the person removed
 *   keep       kept on purpose, with the reason (documented in docs/security.md)
 *   cleanup    rows that do not name the user but exist only because of their data (chunks of
 *              their documents, grants on their files) — removed
 */
export type EraseAction = 'delete' | 'null' | 'anonymise' | 'keep' | 'cleanup';

export interface PlanEntry {
  table: string;
  /** The user-referencing column this entry accounts for (absent for `cleanup`). */
  column?: string;
  action: EraseAction;
  /** Replaces the default condition `column = :userId`. */
  where?: (userId: string, email: string) => RawBuilder<unknown>;
  /** For `anonymise`: the values written instead. */
  set?: Record<string, string | number | null>;
  /** Files on disk named by this table's rows: journaled before the rows go. */
  files?: { nameColumn: string; dir: string };
  /** Section of GET /api/v1/users/me/export holding these rows (export completeness test). */
  export?: string;
  /** Why (for `keep`, `null` and `anonymise`). */
  reason?: string;
}

/** Written in place of the user's id where a row is kept anonymised. */
export const ERASED = 'erased';

const userFiles = (u: string) => sql`select id from files where user_id = ${u}`;
const userKbs = (u: string) => sql`select id from knowledge_bases where user_id = ${u}`;
const userPrompts = (u: string) => sql`select id from prompts where user_id = ${u}`;

export const ERASURE_PLAN: readonly PlanEntry[] = [
  // ---- conversations and memories
  { table: 'chat_shares', column: 'user_id', action: 'delete', export: 'share_links' },
  { table: 'chat_messages', column: 'user_id', action: 'delete', export: 'chats' },
  { table: 'chats', column: 'user_id', action: 'delete', export: 'chats' },
  { table: 'chat_folders', column: 'user_id', action: 'delete', export: 'folders' },
  { table: 'memories', column: 'user_id', action: 'delete', export: 'memories' },
  { table: 'memory_preferences', column: 'user_id', action: 'delete', export: 'memory_preferences' },

  // ---- files and knowledge (grants on them and derived chunks first)
  {
    table: 'resource_grants',
    action: 'cleanup',
    where: (u) =>
      sql`(resource_type = 'file' and resource_id in (${userFiles(u)})) or (resource_type = 'knowledge' and resource_id in (${userKbs(u)}))`,
  },
  {
    table: 'knowledge_chunks',
    action: 'cleanup',
    where: (u) =>
      sql`knowledge_id in (${userKbs(u)}) or document_id in (select id from knowledge_documents where file_id in (${userFiles(u)}))`,
  },
  {
    table: 'knowledge_documents',
    action: 'cleanup',
    where: (u) => sql`knowledge_id in (${userKbs(u)}) or file_id in (${userFiles(u)})`,
  },
  {
    table: 'knowledge_documents',
    column: 'added_by',
    action: 'null',
    reason: 'a document the user added to someone else’s knowledge base from a URL stays in that knowledge base',
  },
  { table: 'knowledge_bases', column: 'user_id', action: 'delete', export: 'knowledge_bases' },
  {
    table: 'resource_grants',
    action: 'cleanup',
    where: (u) => sql`resource_type = 'prompt' and resource_id in (${userPrompts(u)})`,
  },
  { table: 'prompts', column: 'user_id', action: 'delete', export: 'prompts' },
  {
    table: 'files',
    column: 'user_id',
    action: 'delete',
    files: { nameColumn: 'storage_name', dir: 'uploads' },
    export: 'files',
  },
  { table: 'profile_images', column: 'user_id', action: 'delete', export: 'profile_image' },

  // ---- API keys and limits
  {
    table: 'gateway_limits',
    action: 'cleanup',
    where: (u) => sql`scope = 'key' and subject_id in (select id from api_keys where user_id = ${u})`,
  },
  {
    table: 'gateway_limits',
    column: 'subject_id',
    action: 'delete',
    where: (u) => sql`scope = 'user' and subject_id = ${u}`,
    export: 'limits',
  },
  {
    table: 'gateway_limits',
    column: 'updated_by',
    action: 'null',
    reason: 'a limit an admin set for someone else stays in force',
  },
  { table: 'api_keys', column: 'user_id', action: 'delete', export: 'api_keys' },

  // ---- access control
  {
    table: 'resource_grants',
    column: 'principal_id',
    action: 'delete',
    where: (u) => sql`principal_type = 'user' and principal_id = ${u}`,
    export: 'grants',
  },
  {
    table: 'resource_grants',
    column: 'granted_by',
    action: 'null',
    reason: 'a grant the user gave to someone else stays in force',
  },
  { table: 'group_members', column: 'user_id', action: 'delete', export: 'groups' },
  { table: 'groups', column: 'created_by', action: 'null', reason: 'groups belong to the organisation' },
  { table: 'impersonations', column: 'user_id', action: 'delete', export: 'impersonations' },
  { table: 'impersonations', column: 'admin_id', action: 'delete', export: 'impersonations' },

  // ---- sign-in
  { table: 'sso_sessions', column: 'user_id', action: 'delete', export: 'sessions' },
  { table: 'sessions', column: 'actor_id', action: 'delete', export: 'sessions' },
  { table: 'sessions', column: 'user_id', action: 'delete', export: 'sessions' },
  { table: 'identities', column: 'user_id', action: 'delete', export: 'identities' },
  { table: 'scim_users', column: 'user_id', action: 'delete', export: 'scim' },
  { table: 'user_security', column: 'user_id', action: 'delete', export: 'security' },
  {
    table: 'user_security',
    column: 'password_reset_by',
    action: 'null',
    reason: 'another account keeps its forced password change',
  },
  { table: 'recovery_codes', column: 'user_id', action: 'delete', export: 'security' },
  { table: 'two_factor_challenges', column: 'user_id', action: 'delete', export: 'security' },
  {
    table: 'login_attempts',
    column: 'user_id',
    action: 'delete',
    where: (u, email) => sql`user_id = ${u} or (kind = 'account' and label = ${email.trim().toLowerCase()})`,
  },

  // ---- models and the gateway
  { table: 'model_connections', column: 'owner_id', action: 'delete', export: 'connections' },
  {
    table: 'model_connections',
    column: 'created_by',
    action: 'null',
    reason: 'connections an admin configured serve everyone',
  },
  {
    table: 'model_presets',
    column: 'owner_id',
    action: 'null',
    export: 'model_presets',
    reason:
      'workspace models are shared resources other people may use: they stay, without owner, for admins to manage',
  },
  {
    table: 'gateway_usage',
    column: 'user_id',
    action: 'anonymise',
    set: { user_id: ERASED, actor_id: null, key_id: null },
    export: 'usage',
    reason:
      'token counts per model and day stay correct for budgets and capacity figures; nothing links them to the person',
  },
  {
    table: 'gateway_usage',
    column: 'actor_id',
    action: 'null',
    reason: 'requests the user made while impersonating someone else stay counted for that account',
  },

  // ---- kept
  {
    table: 'audit_events',
    column: 'actor_id',
    action: 'keep',
    export: 'audit',
    reason:
      'the audit trail is append-only and hash-chained (tamper evidence); entries leave it only through AUDIT_RETENTION_DAYS',
  },
  { table: 'audit_events', column: 'subject_id', action: 'keep', export: 'audit', reason: 'as actor_id' },
];

/** Rows of `app_state` whose value is the user's id (the first-admin marker) keep the marker, not the id. */
export const APP_STATE_VALUE = { table: 'app_state', column: 'value' } as const;

/** What a column name must look like to count as a reference to a user. */
export const USER_REFERENCE_COLUMN = /^(user_id|owner_id|principal_id|actor_id|admin_id|subject_id)$|_user_id$|_by$/;
