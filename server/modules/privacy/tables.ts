import type { Millis } from '../../platform/db/types.js';

/** The file-deletion journal (migration 0008_chats): written in the erasing transaction, emptied after commit. */
export interface PendingFileDeletionsTable {
  id: string;
  /** Relative to DATA_DIR. */
  path: string;
  reason: string;
  created_at: Millis;
  attempts: number;
  last_error: string | null;
}

declare module '../../platform/db/types.js' {
  interface Database {
    pending_file_deletions: PendingFileDeletionsTable;
  }
}
