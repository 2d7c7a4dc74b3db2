import type { Flag, Millis } from '../../platform/db/types.js';

/** Upstream model connections (migration 0005_gateway). */
export interface ModelConnectionsTable {
  id: string;
  /** null: admin-configured, for everyone; a user id: that user's direct connection. */
  owner_id: string | null;
  type: 'openai' | 'ollama';
  name: string;
  base_url: string;
  /** Sealed envelope (secretbox), never plaintext. */
  api_key_enc: string | null;
  /** Sealed JSON object of extra headers. */
  headers_enc: string | null;
  prefix_id: string | null;
  /** JSON array of upstream model ids (allowlist; empty: every discovered model). */
  model_ids: string;
  enabled: Flag;
  created_by: string | null;
  created_at: Millis;
  updated_at: Millis;
}

declare module '../../platform/db/types.js' {
  interface Database {
    model_connections: ModelConnectionsTable;
  }
}
