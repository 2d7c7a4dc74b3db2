import type { Flag, Millis } from '../../platform/db/types.js';

/** Presets ("workspace models"): a base model with a system prompt and parameters (migration 0005_gateway). */
export interface ModelPresetsTable {
  id: string;
  name: string;
  base_model_id: string;
  description: string;
  system_prompt: string | null;
  /** JSON object of completion parameters. */
  params: string;
  owner_id: string | null;
  is_active: Flag;
  /** JSON array of knowledge-base ids (migration 0009); retrieved only where the caller may read. */
  knowledge_ids: string | null;
  /** JSON array of file ids (migration 0009); retrieved only where the caller may read. */
  file_ids: string | null;
  created_at: Millis;
  updated_at: Millis;
}

declare module '../../platform/db/types.js' {
  interface Database {
    model_presets: ModelPresetsTable;
  }
}
