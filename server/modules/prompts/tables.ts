import type { Millis } from '../../platform/db/types.js';

/** A workspace prompt: typed as `/command` in a chat, it inserts `content`. */
export interface PromptsTable {
  id: string;
  /** The creator and owner; never taken from a request body. */
  user_id: string;
  /** Unique per owner: lower-case letters, digits, `-` and `_`. */
  command: string;
  title: string;
  content: string;
  created_at: Millis;
  updated_at: Millis;
}

declare module '../../platform/db/types.js' {
  interface Database {
    prompts: PromptsTable;
  }
}
