import type { Millis } from '../db/types.js';

/** One entry of the tamper-evident trail; `seq` is gapless and `hash` chains every row to the previous one. */
export interface AuditEventsTable {
  seq: number;
  created_at: Millis;
  action: string;
  actor_id: string | null;
  subject_id: string | null;
  resource_type: string;
  resource_id: string | null;
  result: string;
  ip: string | null;
  request_id: string | null;
  /** JSON text (masked) or null. */
  before: string | null;
  after: string | null;
  details: string | null;
  prev_hash: string;
  hash: string;
}

/** The head of the chain: a single row (id 1) holding the last sequence number and hash. */
export interface AuditChainTable {
  id: number;
  seq: number;
  hash: string;
  updated_at: Millis;
}

/** A sealed segment (contiguous seq range). Pruned segments keep their final hash as the checkpoint. */
export interface AuditCheckpointsTable {
  last_seq: number;
  first_seq: number;
  last_hash: string;
  first_created_at: Millis;
  last_created_at: Millis;
  row_count: number;
  sealed_at: Millis;
  pruned_at: Millis | null;
}

declare module '../db/types.js' {
  interface Database {
    audit_events: AuditEventsTable;
    audit_chain: AuditChainTable;
    audit_checkpoints: AuditCheckpointsTable;
  }
}
