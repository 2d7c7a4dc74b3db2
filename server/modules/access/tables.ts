import type { Millis } from '../../platform/db/types.js';

/** Tables of the access-control area (migration 0003_access). */
export interface GroupsTable {
  id: string;
  name: string;
  name_key: string;
  description: string;
  /** JSON object: permission name → true. */
  permissions: string;
  source: string;
  created_by: string | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface GroupMembersTable {
  group_id: string;
  user_id: string;
  source: string;
  created_at: Millis;
}

export interface ResourceGrantsTable {
  id: string;
  resource_type: string;
  resource_id: string;
  principal_type: 'user' | 'group';
  principal_id: string;
  permission: 'read' | 'write';
  granted_by: string | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  name: string;
  hash: string;
  pepper_kid: string;
  hint: string;
  /** JSON array of paths, or null (no per-key restriction). */
  allowed_endpoints: string | null;
  /** JSON array of model ids, or null (no per-key restriction). */
  allowed_models: string | null;
  created_at: Millis;
  updated_at: Millis;
  rotated_at: Millis | null;
  expires_at: Millis | null;
  last_used_at: Millis | null;
}

export interface ImpersonationsTable {
  id: string;
  session_id: string;
  admin_id: string;
  user_id: string;
  admin_session_id: string | null;
  reason: string;
  started_at: Millis;
  expires_at: Millis;
  ended_at: Millis | null;
  ended_reason: string | null;
}

declare module '../../platform/db/types.js' {
  interface Database {
    groups: GroupsTable;
    group_members: GroupMembersTable;
    resource_grants: ResourceGrantsTable;
    api_keys: ApiKeysTable;
    impersonations: ImpersonationsTable;
  }
}
