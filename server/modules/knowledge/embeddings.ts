import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../context.js';
import type { Actor } from '../access/index.js';
import { mapTransportError, readCapped, upstreamHeaders } from '../connections/transport.js';
import type { Lease } from '../gateway/limits.js';
import { gatewayServices } from '../gateway/services.js';
import type { UsageRow } from '../gateway/usage.js';

/**
 * Embeddings for knowledge retrieval (RAG_EMBEDDING_MODEL). The model is a connection model as
 * clients see it; the request goes through the gateway's transports (stored, decrypted key, the
 * connection's own agent) and every call is recorded in the gateway's usage ledger. Passages are
 * embedded by the background worker (backfill.ts), never inside a request; a query is embedded at
 * retrieval. Unset: nothing here is ever called and retrieval is full-text only.
 */

/** Texts per `/v1/embeddings` request. */
export const EMBED_BATCH = 64;
/** Most embedded passages scored by cosine similarity for one query (the newest readable ones). */
export const EMBED_CANDIDATES = 2000;
/** Largest embeddings response read. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Why an embeddings call failed. `rejected`: the upstream refused this input (400, 413, 422) or
 * answered something unusable — trying the same chunks again in smaller batches may help.
 * Anything else (unreachable, timeout, 401/403/404, 429, 5xx, the model not configured) says
 * nothing about the input: try again later.
 */
export class EmbeddingError extends Error {
  constructor(
    message: string,
    readonly rejected = false,
  ) {
    super(message);
    this.name = 'EmbeddingError';
  }
}

export function embeddingsEnabled(ctx: Pick<AppContext, 'config'>): boolean {
  return !!ctx.config.RAG_EMBEDDING_MODEL;
}

/**
 * Who an embeddings call is recorded for (a gateway usage row, route `embeddings`): the knowledge
 * base's owner for the passages the worker embeds, the caller for a query.
 */
export interface EmbeddingBilling {
  userId: string;
  /** The admin acting during impersonation; null otherwise. */
  actorId: string | null;
  keyId: string | null;
  requestId: string;
}

/** The estimate used when the upstream reports no usage: characters / 3, as the gateway does. */
export function estimateTokens(texts: string[]): number {
  let chars = 0;
  for (const t of texts) chars += t.length;
  return Math.max(1, Math.ceil(chars / 3));
}

export interface EmbeddedBatch {
  vectors: number[][];
  /** Tokens recorded for the call (the upstream's figure, else the estimate). */
  tokens: number;
}

const invalid = () => new EmbeddingError('The embeddings endpoint sent an invalid response', true);

/**
 * One `/embeddings` call for at most EMBED_BATCH texts; one vector per text, in order. Every call
 * dispatched to the upstream writes one gateway usage row for `bill` (completed: the upstream's
 * token count, or the estimate when it sends none; failed or cancelled: 0 tokens). Throws
 * EmbeddingError (never carries upstream bodies).
 */
export async function embedBatch(
  ctx: AppContext,
  texts: string[],
  bill: EmbeddingBilling,
  signal?: AbortSignal,
): Promise<EmbeddedBatch> {
  const model = ctx.config.RAG_EMBEDDING_MODEL;
  if (!model) throw new EmbeddingError('RAG_EMBEDDING_MODEL is not set');
  if (texts.length === 0) return { vectors: [], tokens: 0 };
  if (texts.length > EMBED_BATCH) throw new Error(`embedBatch takes at most ${EMBED_BATCH} texts`);
  const svc = gatewayServices(ctx);
  const cm = await svc.catalog.findConnectionModel(model);
  if (!cm) throw new EmbeddingError(`The embedding model ${JSON.stringify(model)} is not offered by any connection`);
  if (cm.connection.type !== 'openai')
    throw new EmbeddingError('The embedding model’s connection does not offer /v1/embeddings');

  const started = Date.now();
  const outcome: { status: UsageRow['status']; http: number; tokens: number; source: UsageRow['usage_source'] } = {
    status: 'error',
    http: 502,
    tokens: 0,
    source: 'estimated',
  };
  try {
    let res;
    try {
      res = await svc.transports.send(cm.connection, {
        method: 'POST',
        path: '/embeddings',
        headers: upstreamHeaders(cm.connection, { 'content-type': 'application/json', accept: 'application/json' }),
        body: JSON.stringify({ model: cm.upstreamId, input: texts }),
        signal,
        headersTimeoutMs: ctx.config.GATEWAY_UPSTREAM_HEADERS_TIMEOUT * 1000,
        idleTimeoutMs: ctx.config.GATEWAY_STREAM_IDLE_TIMEOUT * 1000,
      });
    } catch (e) {
      const u = mapTransportError(e, signal);
      if (u.kind === 'aborted') outcome.status = 'aborted';
      if (u.kind === 'timeout') outcome.http = 504;
      throw new EmbeddingError(`The embeddings request failed: ${u.message}`);
    }
    outcome.http = res.status;
    let parsed: unknown;
    try {
      const raw = await readCapped(res.body, MAX_RESPONSE_BYTES);
      if (res.status !== 200)
        throw new EmbeddingError(`The embeddings endpoint answered ${res.status}`, REJECTED.has(res.status));
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      if (e instanceof EmbeddingError) throw e;
      if (signal?.aborted) {
        outcome.status = 'aborted';
        throw new EmbeddingError('The embeddings request was cancelled');
      }
      throw invalid();
    }
    const vectors = vectorsOf(parsed, texts.length);
    const u = (parsed as { usage?: { prompt_tokens?: unknown; total_tokens?: unknown } }).usage;
    const reported =
      typeof u?.total_tokens === 'number' && Number.isFinite(u.total_tokens) && u.total_tokens >= 0
        ? u.total_tokens
        : typeof u?.prompt_tokens === 'number' && Number.isFinite(u.prompt_tokens) && u.prompt_tokens >= 0
          ? u.prompt_tokens
          : null;
    outcome.status = 'completed';
    outcome.tokens = reported ?? estimateTokens(texts);
    outcome.source = reported === null ? 'estimated' : 'upstream';
    return { vectors, tokens: outcome.tokens };
  } finally {
    svc.usage.record({
      created_at: started,
      request_id: bill.requestId,
      route: 'embeddings',
      user_id: bill.userId,
      actor_id: bill.actorId,
      key_id: bill.keyId,
      model_id: model,
      base_model_id: cm.id,
      connection_id: cm.connection.id,
      prompt_tokens: outcome.tokens,
      completion_tokens: 0,
      total_tokens: outcome.tokens,
      usage_source: outcome.source,
      status: outcome.status,
      http_status: outcome.http,
      stream: 0,
      duration_ms: Math.round(Date.now() - started),
      ttft_ms: null,
    });
  }
}

/** Upstream statuses that refuse the input itself (too long, malformed), not the service. */
const REJECTED = new Set([400, 413, 422]);

function vectorsOf(parsed: unknown, count: number): number[][] {
  const data = (parsed as { data?: unknown })?.data;
  if (!Array.isArray(data) || data.length !== count) throw invalid();
  const vectors: number[][] = new Array<number[]>(count);
  for (const [pos, item] of data.entries()) {
    const { index, embedding } = (item ?? {}) as { index?: unknown; embedding?: unknown };
    const at = typeof index === 'number' ? index : pos;
    if (
      !Number.isInteger(at) ||
      at < 0 ||
      at >= count ||
      !Array.isArray(embedding) ||
      embedding.length === 0 ||
      embedding.length > 65_536 ||
      !embedding.every((x) => typeof x === 'number' && Number.isFinite(x))
    )
      throw invalid();
    vectors[at] = embedding as number[];
  }
  if (vectors.some((v) => v === undefined)) throw invalid();
  return vectors;
}

/**
 * The vector of a retrieval query, recorded for the caller. With `limited`, the call first takes
 * the caller's gateway limits (requests, tokens, concurrency, budgets of the user, the API key,
 * the embedding model and the caller's groups) and settles them with the real figure; when a limit
 * refuses — or the embedding fails — the answer is null and retrieval is full-text only.
 */
export async function embedQuery(
  ctx: AppContext,
  actor: Actor,
  query: string,
  opts: { limited: boolean; requestId?: string },
): Promise<number[] | null> {
  const model = ctx.config.RAG_EMBEDDING_MODEL;
  if (!model) return null;
  const svc = gatewayServices(ctx);
  const requestId = opts.requestId ?? randomUUID();
  let lease: Lease | null = null;
  if (opts.limited) {
    try {
      const groupIds = (await svc.limits.usesGroups()) ? await svc.limits.groupsOf(actor, ctx) : [];
      lease = await svc.limits.acquire(
        null,
        { userId: actor.userId, keyId: actor.apiKey?.id ?? null, groupIds, modelIds: [model] },
        estimateTokens([query]),
        `${requestId}:embed`,
      );
    } catch (e) {
      ctx.log.info(
        { err: (e as Error).message, user_id: actor.userId },
        'Knowledge query not embedded (limits); full-text results only',
      );
      return null;
    }
  }
  let tokens = 0;
  try {
    const r = await embedBatch(ctx, [query], {
      userId: actor.userId,
      actorId: actor.actorId !== actor.userId ? actor.actorId : null,
      keyId: actor.apiKey?.id ?? null,
      requestId,
    });
    tokens = r.tokens;
    return r.vectors[0] ?? null;
  } catch (e) {
    ctx.log.warn({ err: (e as Error).message }, 'Knowledge query could not be embedded; full-text results only');
    return null;
  } finally {
    if (lease) void svc.limits.finish(lease, tokens);
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
