import type { Generated } from 'kysely';
import type { Millis } from '../../platform/db/types.js';

/** Columns of `knowledge_chunks` the embedding worker owns (migration 0011_embedding_model). */
declare module '../files/tables.js' {
  interface KnowledgeChunksTable {
    /**
     * The model `embedding` was computed with (RAG_EMBEDDING_MODEL as clients see it). Without
     * `embedding`: the model the failed attempts were made with (null: never tried).
     */
    embedding_model: string | null;
    /** Attempts whose content the upstream rejected, with `embedding_model`; reset on success. */
    embed_attempts: Generated<number>;
    /** Claim token of the worker embedding the chunk right now. */
    embed_claim: string | null;
    embed_claimed_at: Millis | null;
  }
}
