import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql, type RawBuilder } from 'kysely';
import type { AppContext } from '../../context.js';
import type { Db, Trx } from '../../platform/db/index.js';
import { gatewayServices } from '../gateway/services.js';
import { EMBED_BATCH, embedBatch, EmbeddingError, embeddingsEnabled } from './embeddings.js';
import './tables.js';

/**
 * The embedding worker: embeds, in the background, every knowledge chunk that has no vector for
 * the configured RAG_EMBEDDING_MODEL — chunks just added (an ingest request stores them and
 * returns, then wakes the worker), chunks stored before the model was set or while the upstream
 * failed, chunks embedded with another model, and everything after a re-index.
 *
 * - One upstream call per batch of at most EMBED_BATCH chunks, all of knowledge bases of the same
 *   owner (the call is recorded in the gateway usage ledger for that owner), then a short pause.
 * - When the upstream cannot be reached or refuses the service (timeouts, 401/403/404, 429, 5xx,
 *   the model not offered by any connection) the chunks are released untouched and the worker
 *   waits (5 s, doubling up to 5 min) before trying again. When it rejects the input (400, 413,
 *   422, an unusable answer) the chunks count a failed attempt and are retried later in smaller
 *   batches (64, 32, 16 …, 1, so one bad chunk cannot hold back the others); after MAX_ATTEMPTS
 *   a chunk is `failed` and stays full-text only until the next re-index.
 * - Several instances share the work through claims: a batch is claimed with one
 *   `UPDATE … SET embed_claim = <token> WHERE id IN (…) AND <still to do> AND <not claimed>`,
 *   exclusive on both engines (PostgreSQL re-checks the WHERE of a row another transaction just
 *   claimed), and vectors are written only where the claim is still ours — a re-index in the
 *   meantime drops them. A claim left by a crashed instance expires (claimTtlMs).
 * - Similarity search reads only vectors whose `embedding_model` is the configured model.
 */

/** Failed attempts (input rejected) after which a chunk is `failed` until the next re-index. */
export const MAX_ATTEMPTS = 8;
/** Pause between two batches. */
const PAUSE_MS = 250;
/** With nothing to do, look again this often (work added through another instance). */
const IDLE_POLL_MS = 60_000;
const BACKOFF_MIN_MS = 5_000;
const BACKOFF_MAX_MS = 5 * 60_000;

/** A claim older than this belongs to an instance that went away: the chunks are taken over. */
export function claimTtlMs(ctx: Pick<AppContext, 'config'>): number {
  return (ctx.config.GATEWAY_UPSTREAM_HEADERS_TIMEOUT + ctx.config.GATEWAY_STREAM_IDLE_TIMEOUT) * 2000 + 60_000;
}

type Col = 'embedding' | 'embedding_model' | 'embed_attempts' | 'embed_claim' | 'embed_claimed_at' | 'id';

/** The conditions of the queue, for the table with or without the alias `c`. */
function conditions(alias: 'c' | null, model: string, staleBefore: number) {
  const col = (name: Col) => sql.ref(alias ? `${alias}.${name}` : name);
  return {
    /** No vector: new, re-indexed, or failed with fewer than MAX_ATTEMPTS (or with another model). */
    todo: sql`${col('embedding')} is null and (${col('embed_attempts')} < ${MAX_ATTEMPTS} or ${col('embedding_model')} is null or ${col('embedding_model')} <> ${model})`,
    todoOrder: sql`${col('embed_attempts')}, ${col('id')}`,
    /** A vector of another model (ranges, so the index on embedding_model serves them). */
    other: sql`${col('embedding')} is not null and (${col('embedding_model')} is null or ${col('embedding_model')} < ${model} or ${col('embedding_model')} > ${model})`,
    otherOrder: sql`${col('id')}`,
    free: sql`(${col('embed_claim')} is null or ${col('embed_claimed_at')} < ${staleBefore})`,
  };
}

interface Claimed {
  token: string;
  owner: string;
  ids: number[];
  texts: string[];
}

/** Claims the next batch (one owner's chunks), or null when nothing is left to do. */
export async function claimBatch(db: Db, model: string, ttlMs: number, now = Date.now()): Promise<Claimed | null> {
  const c = conditions('c', model, now - ttlMs);
  const plain = conditions(null, model, now - ttlMs);
  const queues: [RawBuilder<unknown>, RawBuilder<unknown>, RawBuilder<unknown>][] = [
    [c.todo, c.todoOrder, plain.todo],
    [c.other, c.otherOrder, plain.other],
  ];
  for (const [cond, order, plainCond] of queues) {
    const head = (
      await sql<{ user_id: string; attempts: number | string; embedding_model: string | null }>`
        select kb.user_id, c.embed_attempts as attempts, c.embedding_model
        from knowledge_chunks c join knowledge_bases kb on kb.id = c.knowledge_id
        where ${cond} and ${c.free}
        order by ${order}
        limit 1`.execute(db)
    ).rows[0];
    if (!head) continue;
    const attempts = head.embedding_model === model ? Number(head.attempts) : 0;
    const size = Math.max(1, EMBED_BATCH >> Math.min(attempts, 30));
    const candidates = (
      await sql<{ id: number | string }>`
        select c.id from knowledge_chunks c join knowledge_bases kb on kb.id = c.knowledge_id
        where ${cond} and ${c.free} and kb.user_id = ${head.user_id}
        order by ${order}
        limit ${size}`.execute(db)
    ).rows.map((r) => Number(r.id));
    if (candidates.length === 0) continue;
    const token = randomUUID();
    await sql`update knowledge_chunks set embed_claim = ${token}, embed_claimed_at = ${now}
      where id in (${sql.join(candidates)}) and ${plainCond} and ${plain.free}`.execute(db);
    const rows = await db
      .selectFrom('knowledge_chunks')
      .select(['id', 'text'])
      .where('id', 'in', candidates)
      .where('embed_claim', '=', token)
      .orderBy('id')
      .execute();
    // Another instance claimed these first: look again (the queue has moved on).
    if (rows.length === 0) return { token, owner: head.user_id, ids: [], texts: [] };
    return { token, owner: head.user_id, ids: rows.map((r) => Number(r.id)), texts: rows.map((r) => r.text) };
  }
  return null;
}

async function release(db: Db, b: Claimed): Promise<void> {
  await db
    .updateTable('knowledge_chunks')
    .set({ embed_claim: null, embed_claimed_at: null })
    .where('id', 'in', b.ids)
    .where('embed_claim', '=', b.token)
    .execute();
}

async function storeVectors(db: Db, b: Claimed, model: string, vectors: number[][]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const [i, id] of b.ids.entries())
      await trx
        .updateTable('knowledge_chunks')
        .set({
          embedding: JSON.stringify(vectors[i]),
          embedding_model: model,
          embed_attempts: 0,
          embed_claim: null,
          embed_claimed_at: null,
        })
        .where('id', '=', id)
        .where('embed_claim', '=', b.token)
        .execute();
  });
}

async function countFailure(db: Db, b: Claimed, model: string): Promise<void> {
  await sql`update knowledge_chunks
    set embed_attempts = case when embedding is null and embedding_model = ${model} then embed_attempts + 1 else 1 end,
        embedding = null, embedding_model = ${model}, embed_claim = null, embed_claimed_at = null
    where id in (${sql.join(b.ids)}) and embed_claim = ${b.token}`.execute(db);
}

export interface EmbeddingCounts {
  /** RAG_EMBEDDING_MODEL, or null when retrieval is full-text only. */
  model: string | null;
  total: number;
  /** Chunks with a vector of `model` (used by similarity search). */
  embedded: number;
  /** Chunks the worker will still embed (new, other model, re-indexed, failed fewer than MAX_ATTEMPTS times). */
  pending: number;
  /** Chunks whose input the upstream rejected MAX_ATTEMPTS times: full-text only until a re-index. */
  failed: number;
}

export async function embeddingCounts(ctx: Pick<AppContext, 'config' | 'db'>): Promise<EmbeddingCounts> {
  const model = ctx.config.RAG_EMBEDDING_MODEL ?? null;
  const r = (
    await sql<{ total: number | string; embedded: number | string | null; failed: number | string | null }>`
      select count(*) as total,
        sum(case when embedding is not null and embedding_model = ${model} then 1 else 0 end) as embedded,
        sum(case when embedding is null and embedding_model = ${model} and embed_attempts >= ${MAX_ATTEMPTS} then 1 else 0 end) as failed
      from knowledge_chunks`.execute(ctx.db)
  ).rows[0];
  const total = Number(r?.total ?? 0);
  if (!model) return { model, total, embedded: 0, pending: 0, failed: 0 };
  const embedded = Number(r?.embedded ?? 0);
  const failed = Number(r?.failed ?? 0);
  return { model, total, embedded, pending: Math.max(0, total - embedded - failed), failed };
}

/** Drops every stored vector, failure count and claim: the worker embeds everything again. */
export async function markAllForReindex(db: Db | Trx): Promise<number> {
  const r = await db
    .updateTable('knowledge_chunks')
    .set({ embedding: null, embedding_model: null, embed_attempts: 0, embed_claim: null, embed_claimed_at: null })
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

type Outcome = 'more' | 'idle' | 'error';

export interface WorkerState {
  /** disabled (no RAG_EMBEDDING_MODEL), stopped, idle, working, or backoff after an upstream error. */
  state: 'disabled' | 'stopped' | 'idle' | 'working' | 'backoff';
  last_error: string | null;
  last_error_at: number | null;
  /** When the worker tries again after an error. */
  retry_at: number | null;
  last_batch_at: number | null;
  /** Chunks embedded by this instance since it started. */
  embedded_since_start: number;
}

export class EmbeddingWorker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private forced = false;
  private stopped = true;
  private backoffMs = 0;
  private controller: AbortController | null = null;
  private readonly st: WorkerState;

  constructor(private readonly ctx: AppContext) {
    this.st = {
      state: embeddingsEnabled(ctx) ? 'stopped' : 'disabled',
      last_error: null,
      last_error_at: null,
      retry_at: null,
      last_batch_at: null,
      embedded_since_start: 0,
    };
  }

  get state(): WorkerState {
    return { ...this.st };
  }

  start(): void {
    if (!embeddingsEnabled(this.ctx) || !this.stopped) return;
    this.stopped = false;
    this.st.state = 'idle';
    this.wake(0);
  }

  /**
   * Work is waiting: run now unless the worker is waiting after an upstream error (`force`, as a
   * re-index does, ends that wait too).
   */
  kick(opts: { force?: boolean } = {}): void {
    if (this.stopped) return;
    if (opts.force) {
      this.forced = true;
      this.backoffMs = 0;
      this.st.retry_at = null;
    } else if (this.st.retry_at !== null && this.st.retry_at > Date.now()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.wake(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.controller?.abort();
    await this.running;
    if (this.st.state !== 'disabled') this.st.state = 'stopped';
  }

  private wake(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    if (this.stopped || this.running) return;
    this.again = false;
    this.forced = false;
    this.st.state = 'working';
    let outcome: Outcome = 'error';
    this.running = this.step()
      .then((o) => {
        outcome = o;
      })
      .catch((e: Error) => {
        this.failed(e.message);
      })
      .finally(() => {
        this.running = null;
        if (this.stopped) return;
        if (outcome === 'error' && !this.forced) {
          this.backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, this.backoffMs * 2));
          this.st.retry_at = Date.now() + this.backoffMs;
          this.st.state = 'backoff';
          this.wake(this.backoffMs);
          return;
        }
        if (outcome !== 'error') this.backoffMs = 0;
        this.st.retry_at = null;
        this.st.state = outcome === 'idle' ? 'idle' : 'working';
        const next =
          this.forced || (outcome === 'idle' && this.again) ? 0 : outcome === 'idle' ? IDLE_POLL_MS : PAUSE_MS;
        this.wake(next);
      });
  }

  private failed(message: string): void {
    this.st.last_error = message;
    this.st.last_error_at = Date.now();
    this.ctx.log.warn({ err: message }, 'Knowledge embedding worker: batch failed, will retry');
  }

  /** One batch. */
  private async step(): Promise<Outcome> {
    const model = this.ctx.config.RAG_EMBEDDING_MODEL;
    if (!model) return 'idle';
    const b = await claimBatch(this.ctx.db, model, claimTtlMs(this.ctx));
    if (!b) return 'idle';
    if (b.ids.length === 0) return 'more';
    this.controller = new AbortController();
    try {
      const r = await embedBatch(
        this.ctx,
        b.texts,
        { userId: b.owner, actorId: null, keyId: null, requestId: randomUUID() },
        this.controller.signal,
      );
      await storeVectors(this.ctx.db, b, model, r.vectors);
      this.st.last_batch_at = Date.now();
      this.st.embedded_since_start += b.ids.length;
      return 'more';
    } catch (e) {
      const rejected = e instanceof EmbeddingError && e.rejected;
      await (rejected ? countFailure(this.ctx.db, b, model) : release(this.ctx.db, b)).catch(() => undefined);
      if (!this.stopped) this.failed((e as Error).message);
      return 'error';
    } finally {
      this.controller = null;
    }
  }
}

const workers = new WeakMap<AppContext, EmbeddingWorker>();

/** The instance's worker (created stopped; scheduleEmbeddingWorker starts it with the app). */
export function embeddingWorker(ctx: AppContext): EmbeddingWorker {
  let w = workers.get(ctx);
  if (!w) {
    w = new EmbeddingWorker(ctx);
    workers.set(ctx, w);
  }
  return w;
}

/** Starts the worker when the app is ready (with RAG_EMBEDDING_MODEL) and stops it on close. */
export function scheduleEmbeddingWorker(app: FastifyInstance, ctx: AppContext): void {
  const w = embeddingWorker(ctx);
  if (!embeddingsEnabled(ctx)) return;
  app.addHook('onReady', async () => {
    w.start();
  });
  app.addHook('onClose', async () => {
    await w.stop();
    // The usage rows of the last batches are written before the database closes.
    await gatewayServices(ctx).usage.flush();
  });
}
