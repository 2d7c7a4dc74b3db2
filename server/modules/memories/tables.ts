import type { Selectable } from 'kysely';
import type { Flag, Millis } from '../../platform/db/types.js';

/** Tables of migration 0008_chats (memories part). */
export interface MemoriesTable {
  id: string;
  user_id: string;
  content: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface MemoryPreferencesTable {
  user_id: string;
  inject_into_chats: Flag;
  updated_at: Millis;
}

export type Memory = Selectable<MemoriesTable>;

declare module '../../platform/db/types.js' {
  interface Database {
    memories: MemoriesTable;
    memory_preferences: MemoryPreferencesTable;
  }
}
