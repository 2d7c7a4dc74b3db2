import type { AppContext } from '../../context.js';
import { readCapped, upstreamHeaders } from '../connections/transport.js';
import { gatewayServices } from '../gateway/services.js';

/**
 * Embeddings for knowledge retrieval (RAG_EMBEDDING_MODEL). The model is a connection model as
 * clients see it; the request goes through the gateway's transports (stored, decrypted key, the
 * connection's own agent). Unset: nothing here is ever called and retrieval is full-text only.
 */

/** Texts per `/v1/embeddings` request. */
export const EMBED_BATCH = 64;
/** Most embedded passages scored by cosine similarity for one query (the newest readable ones). */
export const EMBED_CANDIDATES = 2000;
/** Largest embeddings response read. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class EmbeddingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddingError';
  }
}

export function embeddingsEnabled(ctx: Pick<AppContext, 'config'>): boolean {
  return !!ctx.config.RAG_EMBEDDING_MODEL;
}

/** One vector per text, in order. Throws EmbeddingError (never carries upstream bodies). */
export async function embedTexts(ctx: AppContext, texts: string[]): Promise<number[][]> {
  const model = ctx.config.RAG_EMBEDDING_MODEL;
  if (!model) throw new EmbeddingError('RAG_EMBEDDING_MODEL is not set');
  const svc = gatewayServices(ctx);
  const cm = await svc.catalog.findConnectionModel(model);
  if (!cm) throw new EmbeddingError(`The embedding model ${JSON.stringify(model)} is not offered by any connection`);
  if (cm.connection.type !== 'openai')
    throw new EmbeddingError('The embedding model’s connection does not offer /v1/embeddings');
  const out: number[][] = [];
  for (let i = 0; i < texts.length; i += EMBED_BATCH) {
    const batch = texts.slice(i, i + EMBED_BATCH);
    let res;
    try {
      res = await svc.transports.send(cm.connection, {
        method: 'POST',
        path: '/embeddings',
        headers: upstreamHeaders(cm.connection, { 'content-type': 'application/json', accept: 'application/json' }),
        body: JSON.stringify({ model: cm.upstreamId, input: batch }),
        headersTimeoutMs: ctx.config.GATEWAY_UPSTREAM_HEADERS_TIMEOUT * 1000,
        idleTimeoutMs: ctx.config.GATEWAY_STREAM_IDLE_TIMEOUT * 1000,
      });
    } catch (e) {
      throw new EmbeddingError(`The embeddings request failed: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      const raw = await readCapped(res.body, MAX_RESPONSE_BYTES);
      if (res.status !== 200) throw new EmbeddingError(`The embeddings endpoint answered ${res.status}`);
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      if (e instanceof EmbeddingError) throw e;
      throw new EmbeddingError('The embeddings endpoint sent an invalid response');
    }
    const data = (parsed as { data?: unknown })?.data;
    if (!Array.isArray(data) || data.length !== batch.length)
      throw new EmbeddingError('The embeddings endpoint sent an invalid response');
    const vectors: number[][] = new Array<number[]>(batch.length);
    for (const [pos, item] of data.entries()) {
      const { index, embedding } = (item ?? {}) as { index?: unknown; embedding?: unknown };
      const at = typeof index === 'number' ? index : pos;
      if (
        !Number.isInteger(at) ||
        at < 0 ||
        at >= batch.length ||
        !Array.isArray(embedding) ||
        embedding.length === 0 ||
        embedding.length > 65_536 ||
        !embedding.every((x) => typeof x === 'number' && Number.isFinite(x))
      )
        throw new EmbeddingError('The embeddings endpoint sent an invalid response');
      vectors[at] = embedding as number[];
    }
    if (vectors.some((v) => v === undefined))
      throw new EmbeddingError('The embeddings endpoint sent an invalid response');
    out.push(...vectors);
  }
  return out;
}

/**
 * Embeds the chunks of a stored document (after its transaction committed). A failure leaves the
 * document as it is — searchable by full text — and is logged as a warning.
 */
export async function embedDocument(ctx: AppContext, documentId: string): Promise<void> {
  if (!embeddingsEnabled(ctx)) return;
  try {
    const chunks = await ctx.db
      .selectFrom('knowledge_chunks')
      .select(['id', 'text'])
      .where('document_id', '=', documentId)
      .orderBy('seq')
      .execute();
    if (chunks.length === 0) return;
    const vectors = await embedTexts(
      ctx,
      chunks.map((c) => c.text),
    );
    await ctx.db.transaction().execute(async (trx) => {
      for (const [i, c] of chunks.entries())
        await trx
          .updateTable('knowledge_chunks')
          .set({ embedding: JSON.stringify(vectors[i]) })
          .where('id', '=', c.id)
          .execute();
    });
  } catch (e) {
    ctx.log.warn(
      { document_id: documentId, err: (e as Error).message },
      'Knowledge document could not be embedded; it is searchable by full text only',
    );
  }
}

export function cosine(a: number[], b: number[]): number {
  if (a.length !== b.length || a.length === 0) return Number.NaN;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 || nb === 0) return Number.NaN;
  return dot / Math.sqrt(na * nb);
}

export function parseVector(raw: string | null): number[] | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : null;
  } catch {
    return null;
  }
}
