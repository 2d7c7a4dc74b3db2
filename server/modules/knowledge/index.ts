/**
 * Knowledge bases — what other modules use.
 *
 *   retrieve(ctx, actor, { query, knowledgeIds?, limit? }) → Passage[]
 *       full-text search (SQLite FTS5 / PostgreSQL tsvector) over the knowledge bases the actor may
 *       read; every named id is authorised (404 otherwise) and the SQL keeps only readable chunks.
 *       With RAG_EMBEDDING_MODEL, also ranked by embeddings of that model (same access rule) and
 *       merged (RRF); the query's embedding is recorded for the caller and, unless
 *       `limitQueryEmbedding: false`, takes the caller's gateway limits (refused: full text only).
 *   formatContext(passages) → { context, sources }
 *       a numbered context block (`[1] title <url>\n text`) and the citations, for the gateway.
 *   loadKnowledge(db, actor, id, 'read'|'write'|'delete'|'share')  404/403 like every resource.
 *   KNOWLEDGE_TYPE ('knowledge')  grants via /api/v1/access/knowledge/{id}/grants.
 *
 * Embeddings (backfill.ts): adding a document stores its chunks and returns; the embedding worker
 * embeds them in the background (`embeddingWorker(ctx).kick()` after an ingest), records each
 * upstream call for the knowledge base's owner, and keeps only vectors of the configured model in
 * use. Admin: GET /api/v1/knowledge/embeddings/status, POST /api/v1/knowledge/embeddings/reindex.
 *
 * Files (server/modules/files/service.ts): findReadableFile(db, actor, fileId) — use it wherever a
 * request names a file id (chats, presets …): 404 unless owner, grant, or a readable knowledge base.
 */
export { formatContext, KNOWLEDGE_TYPE, loadKnowledge, retrieve, type Passage } from './service.js';
export { loadWebPage, setWebLoaderTransport } from './web-loader.js';
