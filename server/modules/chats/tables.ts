import type { Selectable } from 'kysely';
import type { Flag, Millis } from '../../platform/db/types.js';

/** Tables of migration 0008_chats. */
export interface ChatFoldersTable {
  id: string;
  user_id: string;
  name: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface ChatsTable {
  id: string;
  user_id: string;
  folder_id: string | null;
  title: string;
  pinned: Flag;
  archived: Flag;
  created_at: Millis;
  updated_at: Millis;
}

export interface ChatMessagesTable {
  id: string;
  chat_id: string;
  user_id: string;
  seq: number;
  role: string;
  /** JSON text: a string or an array of content parts. */
  content: string;
  text: string;
  model: string | null;
  /** JSON text or null. */
  usage: string | null;
  /** JSON text or null. */
  meta: string | null;
  created_at: Millis;
  updated_at: Millis;
}

export interface ChatSharesTable {
  id: string;
  chat_id: string;
  user_id: string;
  snapshot: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface JobLeasesTable {
  name: string;
  holder: string;
  expires_at: Millis;
  updated_at: Millis;
}

export type Chat = Selectable<ChatsTable>;
export type ChatMessage = Selectable<ChatMessagesTable>;
export type ChatFolder = Selectable<ChatFoldersTable>;
export type ChatShare = Selectable<ChatSharesTable>;

declare module '../../platform/db/types.js' {
  interface Database {
    chat_folders: ChatFoldersTable;
    chats: ChatsTable;
    chat_messages: ChatMessagesTable;
    chat_shares: ChatSharesTable;
    job_leases: JobLeasesTable;
  }
}
