import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Milliseconds since the epoch (BIGINT in PostgreSQL, INTEGER in SQLite). */
export type Millis = number;
/** 0 / 1 in both engines. */
export type Flag = number;

export interface UsersTable {
  id: string;
  email: string;
  name: string;
  role: 'admin' | 'user' | 'pending';
  active: Flag;
  password_hash: string | null;
  profile_image_url: string | null;
  settings: string;
  created_at: Millis;
  updated_at: Millis;
  last_active_at: Millis | null;
}

export interface IdentitiesTable {
  id: string;
  user_id: string;
  provider: string;
  subject: string;
  created_at: Millis;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  /** Who is acting: differs from user_id during impersonation. */
  actor_id: string | null;
  kind: string;
  created_at: Millis;
  expires_at: Millis | null;
  last_used_at: Millis;
  revoked_at: Millis | null;
  revoked_reason: string | null;
  ip: string | null;
  user_agent: string | null;
}

export interface AppStateTable {
  key: string;
  value: string;
  updated_at: Millis;
}

export interface Database {
  users: UsersTable;
  identities: IdentitiesTable;
  sessions: SessionsTable;
  app_state: AppStateTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type Session = Selectable<SessionsTable>;
export type { ColumnType, Generated };
