import { randomUUID } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type { AppContext } from '../../context.js';
import type { Db, Trx } from '../../platform/db/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { accessibleWhere, authorize, type Actor } from '../access/index.js';
import { KNOWLEDGE_RESOURCE } from '../files/service.js';
import type { KnowledgeBasesTable, KnowledgeDocumentsTable } from '../files/tables.js';
import { chunkText } from './chunk.js';
import { cosine, EMBED_CANDIDATES, embedQuery, parseVector } from './embeddings.js';
import './tables.js';

export type KnowledgeBase = Selectable<KnowledgeBasesTable>;
export type KnowledgeDocument = Selectable<KnowledgeDocumentsTable>;
export const KNOWLEDGE_TYPE = KNOWLEDGE_RESOURCE.type;

/** The knowledge base, if the actor may do `action` (404 when they may not even read it). */
export async function loadKnowledge(
  db: Db | Trx,
  actor: Actor,
  id: string,
  action: 'read' | 'write' | 'delete' | 'share',
): Promise<KnowledgeBase> {
  await authorize(db, actor, action, { type: KNOWLEDGE_TYPE, id }, 'Knowledge base');
  const kb = await db.selectFrom('knowledge_bases').selectAll().where('id', '=', id).executeTakeFirst();
  if (!kb) throw notFound('Knowledge base');
  return kb;
}

export interface NewDocument {
  knowledgeId: string;
  fileId: string | null;
  sourceType: 'file' | 'web';
  sourceUrl: string | null;
  title: string;
  contentType: string;
  size: number;
  text: string;
  addedBy: string;
}

/** Chunks the text and stores the document with its chunks (the full-text index follows). */
export async function addDocument(trx: Trx, doc: NewDocument): Promise<KnowledgeDocument> {
  const chunks = chunkText(doc.text);
  if (chunks.length === 0) throw new AppError('extraction_failed', 'No text was found in the document');
  const now = Date.now();
  const row: KnowledgeDocument = {
    id: randomUUID(),
    knowledge_id: doc.knowledgeId,
    file_id: doc.fileId,
    source_type: doc.sourceType,
    source_url: doc.sourceUrl,
    title: doc.title.slice(0, 500),
    content_type: doc.contentType.slice(0, 128),
    size: doc.size,
    chunk_count: chunks.length,
    added_by: doc.addedBy,
    created_at: now,
  };
  await trx.insertInto('knowledge_documents').values(row).execute();
  for (let i = 0; i < chunks.length; i += 200) {
    await trx
      .insertInto('knowledge_chunks')
      .values(
        chunks.slice(i, i + 200).map((text, j) => ({
          document_id: row.id,
          knowledge_id: doc.knowledgeId,
          seq: i + j,
          text,
          embedding: null,
          created_at: now,
        })),
      )
      .execute();
  }
  await trx.updateTable('knowledge_bases').set({ updated_at: now }).where('id', '=', doc.knowledgeId).execute();
  return row;
}

export interface Passage {
  text: string;
  score: number;
  knowledge_id: string;
  document_id: string;
  chunk_id: number;
  citation: {
    title: string;
    source_type: 'file' | 'web';
    url: string | null;
    file_id: string | null;
    seq: number;
  };
}

/** Query words: letters and digits only, so no search syntax from the caller reaches FTS5 or tsquery. */
export function queryTerms(query: string): string[] {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return [...new Set(words.filter((w) => w.length <= 64))].slice(0, 32);
}

/** Reciprocal rank fusion constant. */
const RRF_K = 60;

/**
 * Full-text retrieval over knowledge bases (SQLite FTS5 bm25, PostgreSQL ts_rank); with
 * RAG_EMBEDDING_MODEL, also by cosine similarity over the newest EMBED_CANDIDATES chunks embedded
 * with that model (same access rule), the two lists merged by reciprocal rank fusion. Chunks the
 * worker has not embedded yet are found by full text only. The query's embedding is recorded in
 * the usage ledger for the caller. Every named
 * knowledge base must be readable by the actor (404 otherwise), and the SQL itself keeps only chunks
 * of knowledge bases the actor may read, so a passage the caller may not read is never returned.
 * Without `knowledgeIds`, every knowledge base the actor may read is searched.
 */
export async function retrieve(
  ctx: AppContext,
  actor: Actor,
  opts: {
    query: string;
    knowledgeIds?: string[];
    limit?: number;
    /** Usage-row request id of the query's embedding (the HTTP request's id). */
    requestId?: string;
    /**
     * Whether the query's embedding takes the caller's gateway limits (default true). A chat
     * completion passes false: the completion itself takes them, right after retrieval.
     */
    limitQueryEmbedding?: boolean;
  },
): Promise<Passage[]> {
  const limit = Math.min(Math.max(opts.limit ?? 5, 1), 50);
  if (opts.knowledgeIds) for (const id of opts.knowledgeIds) await loadKnowledge(ctx.db, actor, id, 'read');
  if (opts.knowledgeIds && opts.knowledgeIds.length === 0) return [];
  const terms = queryTerms(opts.query);
  if (terms.length === 0) return [];
  const readable = accessibleWhere(actor, KNOWLEDGE_TYPE, 'read', { id: 'kb.id', owner: 'kb.user_id' });
  const only = opts.knowledgeIds ? sql`and kb.id in (${sql.join(opts.knowledgeIds)})` : sql``;
  type Row = {
    id: number;
    text: string;
    seq: number;
    document_id: string;
    knowledge_id: string;
    title: string;
    source_type: 'file' | 'web';
    source_url: string | null;
    file_id: string | null;
    score: number;
  };
  let rows: Row[];
  if (ctx.dbKind === 'postgresql') {
    const tsq = terms.join(' | ');
    const r = await sql<Row>`
      select c.id, c.text, c.seq, c.document_id, c.knowledge_id, d.title, d.source_type, d.source_url, d.file_id,
             ts_rank(c.tsv, q) as score
      from knowledge_chunks c
      cross join to_tsquery('english', ${tsq}) q
      join knowledge_documents d on d.id = c.document_id
      join knowledge_bases kb on kb.id = c.knowledge_id
      where c.tsv @@ q and ${readable} ${only}
      order by score desc, c.id
      limit ${limit}`.execute(ctx.db);
    rows = r.rows;
  } else {
    const match = terms.map((t) => `"${t}"`).join(' OR ');
    const r = await sql<Row>`
      select c.id, c.text, c.seq, c.document_id, c.knowledge_id, d.title, d.source_type, d.source_url, d.file_id,
             -bm25(knowledge_chunks_fts) as score
      from knowledge_chunks_fts f
      join knowledge_chunks c on c.id = f.rowid
      join knowledge_documents d on d.id = c.document_id
      join knowledge_bases kb on kb.id = c.knowledge_id
      where knowledge_chunks_fts match ${match} and ${readable} ${only}
      order by score desc, c.id
      limit ${limit}`.execute(ctx.db);
    rows = r.rows;
  }
  const model = ctx.config.RAG_EMBEDDING_MODEL;
  if (model) {
    const qv = await embedQuery(ctx, actor, opts.query, {
      limited: opts.limitQueryEmbedding ?? true,
      requestId: opts.requestId,
    });
    if (qv) {
      // The same access rule as above: only chunks of knowledge bases the actor may read, and only
      // vectors of the configured model (another model's vectors are not comparable).
      const cand = await sql<Row & { embedding: string | null }>`
        select c.id, c.text, c.seq, c.document_id, c.knowledge_id, d.title, d.source_type, d.source_url, d.file_id,
               0 as score, c.embedding
        from knowledge_chunks c
        join knowledge_documents d on d.id = c.document_id
        join knowledge_bases kb on kb.id = c.knowledge_id
        where c.embedding is not null and c.embedding_model = ${model} and ${readable} ${only}
        order by c.id desc
        limit ${EMBED_CANDIDATES}`.execute(ctx.db);
      const byVector: Row[] = [];
      for (const r of cand.rows) {
        const s = cosine(qv, parseVector(r.embedding) ?? []);
        if (Number.isFinite(s)) byVector.push({ ...r, score: s });
      }
      byVector.sort((a, b) => b.score - a.score || Number(a.id) - Number(b.id));
      const fused = new Map<number, { row: Row; score: number }>();
      for (const list of [rows, byVector.slice(0, limit)])
        list.forEach((r, i) => {
          const id = Number(r.id);
          const cur = fused.get(id) ?? { row: r, score: 0 };
          cur.score += 1 / (RRF_K + i + 1);
          fused.set(id, cur);
        });
      rows = [...fused.values()]
        .sort((a, b) => b.score - a.score || Number(a.row.id) - Number(b.row.id))
        .slice(0, limit)
        .map((f) => ({ ...f.row, score: f.score }));
    }
  }
  return rows.map((r) => ({
    text: r.text,
    score: Number(r.score),
    knowledge_id: r.knowledge_id,
    document_id: r.document_id,
    chunk_id: Number(r.id),
    citation: {
      title: r.title,
      source_type: r.source_type,
      url: r.source_url,
      file_id: r.file_id,
      seq: Number(r.seq),
    },
  }));
}

/**
 * Passages as a context block with numbered citations, for the gateway to prepend to a chat:
 * `[1] (title) text …`. The returned `sources` map the numbers back to citations.
 */
export function formatContext(passages: Passage[]): { context: string; sources: Passage['citation'][] } {
  const sources = passages.map((p) => p.citation);
  const context = passages
    .map((p, i) => `[${i + 1}] ${p.citation.title}${p.citation.url ? ` <${p.citation.url}>` : ''}\n${p.text}`)
    .join('\n\n');
  return { context, sources };
}
