import type { Flag, Millis } from '../../platform/db/types.js';

/** Limit and budget rows (migration 0005_gateway). null: inherit; 0: no limit. */
export interface GatewayLimitsTable {
  id: string;
  scope: 'user' | 'group' | 'key' | 'model';
  subject_id: string;
  requests_per_minute: number | null;
  tokens_per_minute: number | null;
  concurrent_requests: number | null;
  tokens_per_day: number | null;
  tokens_per_month: number | null;
  updated_by: string | null;
  created_at: Millis;
  updated_at: Millis;
}

/** One row per dispatched gateway request, written after the response. */
export interface GatewayUsageTable {
  id: string;
  created_at: Millis;
  request_id: string;
  route: 'chat' | 'passthrough' | 'embeddings';
  user_id: string;
  actor_id: string | null;
  key_id: string | null;
  model_id: string | null;
  base_model_id: string | null;
  connection_id: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  usage_source: 'upstream' | 'estimated';
  status: 'completed' | 'error' | 'aborted';
  http_status: number;
  stream: Flag;
  duration_ms: number;
  ttft_ms: number | null;
}

declare module '../../platform/db/types.js' {
  interface Database {
    gateway_limits: GatewayLimitsTable;
    gateway_usage: GatewayUsageTable;
  }
}
