import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import { actorOf } from '../access/index.js';
import { readCapped, upstreamHeaders, type UpstreamResponse } from '../connections/transport.js';
import type { ConnectionModel } from '../models/catalog.js';
import { limitSubject, serverTiming, transportError, upstreamStatusError, watchClient, type Timing } from './chat.js';
import type { GatewayServices } from './services.js';
import type { UsageRow } from './usage.js';

/**
 * OpenAI-compatible embeddings: (key or session already checked) → body validated → model resolved
 * through its presets (their system prompts and parameters do not apply to embeddings) → grant on
 * every model of the chain → limits and budgets taken atomically (the input's estimated tokens) →
 * dispatch (`/embeddings`, or Ollama's `/api/embed` translated) → usage and settlement after the
 * response.
 */

/** Most inputs in one request (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;
/** Most tokens in one token-array input. */
export const MAX_EMBEDDING_INPUT_TOKENS = 65_536;

const tokenId = z.number().int().min(0).max(2_147_483_647);
const tokenArray = z.array(tokenId).min(1).max(MAX_EMBEDDING_INPUT_TOKENS);

export const embeddingsBodySchema = z.looseObject({
  model: z.string().min(1).max(256),
  input: z.union([
    z.string().min(1),
    z.array(z.string().min(1)).min(1).max(MAX_EMBEDDING_INPUTS),
    tokenArray,
    z.array(tokenArray).min(1).max(MAX_EMBEDDING_INPUTS),
  ]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).max(65_536).nullish(),
  user: z.string().max(1024).nullish(),
});

export type EmbeddingsBody = z.infer<typeof embeddingsBodySchema>;

interface EmbeddingUsage {
  prompt_tokens: number;
  total_tokens: number;
}

/** The inputs as a list: one string, one token array, or a batch of either. */
function inputsOf(input: EmbeddingsBody['input']): (string | number[])[] {
  if (typeof input === 'string') return [input];
  if (input.every((x) => typeof x === 'number')) return [input as number[]];
  return input as (string | number[])[];
}

/** Reservation and fallback usage: characters / 3 for text (as for chat prompts), one per token id. */
export function estimateEmbeddingTokens(inputs: (string | number[])[]): number {
  let chars = 0;
  let tokens = 0;
  for (const x of inputs) {
    if (typeof x === 'string') chars += x.length;
    else tokens += x.length;
  }
  return Math.max(1, Math.ceil(chars / 3) + tokens);
}

/** The request sent upstream: the base model's upstream id; Ollama gets its native `/api/embed` body. */
function upstreamRequest(
  body: EmbeddingsBody,
  base: ConnectionModel,
): { path: string; payload: Record<string, unknown> } {
  if (base.connection.type === 'ollama') {
    const payload: Record<string, unknown> = { model: base.upstreamId, input: body.input };
    if (typeof body.dimensions === 'number') payload.dimensions = body.dimensions;
    return { path: '/api/embed', payload };
  }
  const payload: Record<string, unknown> = { ...body, model: base.upstreamId };
  for (const k of ['encoding_format', 'dimensions', 'user'] as const) if (payload[k] == null) delete payload[k];
  return { path: '/embeddings', payload };
}

function float32Base64(v: number[]): string {
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf.toString('base64');
}

const invalidResponse = () => new AppError('upstream_error', 'The model server sent an invalid response');

/** Ollama's `{embeddings, prompt_eval_count}` as OpenAI's list, in the encoding the client asked for. */
function fromOllama(
  doc: Record<string, unknown>,
  count: number,
  base64: boolean,
): { data: Record<string, unknown>[]; usage: EmbeddingUsage | null } {
  const vectors = doc.embeddings;
  if (!Array.isArray(vectors) || vectors.length !== count) throw invalidResponse();
  const data = vectors.map((v: unknown, index) => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) throw invalidResponse();
    return { object: 'embedding', index, embedding: base64 ? float32Base64(v as number[]) : v };
  });
  const n = doc.prompt_eval_count;
  const usage = typeof n === 'number' && Number.isFinite(n) && n >= 0 ? { prompt_tokens: n, total_tokens: n } : null;
  return { data, usage };
}

interface Outcome {
  status: UsageRow['status'];
  httpStatus: number;
  usage: EmbeddingUsage | null;
}

export async function handleEmbeddings(
  svc: GatewayServices,
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  body: EmbeddingsBody,
): Promise<unknown> {
  const actor = actorOf(ctx, req);
  const resolved = await svc.catalog.resolve(body.model, actor.userId);
  await svc.access.assertUsable(actor, body.model, resolved.ids, resolved.chain);

  const inputs = inputsOf(body.input);
  const isOllama = resolved.base.connection.type === 'ollama';
  if (isOllama && inputs.some((x) => typeof x !== 'string'))
    throw new AppError(
      'validation_failed',
      'Invalid body: input: this model accepts text input only, not token arrays',
      {
        where: 'body',
        issues: [{ path: ['input'], message: 'this model accepts text input only, not token arrays' }],
      },
    );
  const { path, payload } = upstreamRequest(body, resolved.base);

  const subject = await limitSubject(svc, ctx, actor, resolved.ids);
  const promptEstimate = estimateEmbeddingTokens(inputs);
  const lease = await svc.limits.acquire(reply, subject, promptEstimate, req.id);

  const started = Date.now();
  const res = reply.raw;
  const client = watchClient(res);
  const controller = client.controller;
  const timing: Timing = { pre: reply.elapsedTime, firstUpstream: 0 };
  const outcome: Outcome = { status: 'error', httpStatus: 502, usage: null };
  const done = () => {
    client.release();
    const prompt = outcome.usage?.prompt_tokens ?? promptEstimate;
    const total = outcome.usage?.total_tokens ?? prompt;
    svc.usage.record({
      created_at: started,
      request_id: req.id,
      route: 'embeddings',
      user_id: actor.userId,
      actor_id: actor.actorId !== actor.userId ? actor.actorId : null,
      key_id: actor.apiKey?.id ?? null,
      model_id: resolved.requested,
      base_model_id: resolved.base.id,
      connection_id: resolved.base.connection.id,
      prompt_tokens: prompt,
      completion_tokens: 0,
      total_tokens: total,
      usage_source: outcome.usage ? 'upstream' : 'estimated',
      status: outcome.status,
      http_status: outcome.httpStatus,
      stream: 0,
      duration_ms: Math.round(Date.now() - started),
      ttft_ms: null,
    });
    void svc.limits.finish(lease, total);
  };

  const conn = resolved.base.connection;
  try {
    let upstream: UpstreamResponse;
    try {
      upstream = await svc.transports.send(conn, {
        method: 'POST',
        path,
        headers: upstreamHeaders(conn, { 'content-type': 'application/json', accept: 'application/json' }),
        body: JSON.stringify(payload),
        signal: controller.signal,
        headersTimeoutMs: ctx.config.GATEWAY_UPSTREAM_HEADERS_TIMEOUT * 1000,
        idleTimeoutMs: ctx.config.GATEWAY_STREAM_IDLE_TIMEOUT * 1000,
      });
    } catch (e) {
      throw transportError(e);
    }
    if (upstream.status < 200 || upstream.status >= 300) throw await upstreamStatusError(upstream, reply);

    const buf = await readCapped(upstream.body, ctx.config.GATEWAY_MAX_BODY_SIZE);
    timing.firstUpstream = reply.elapsedTime;
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw invalidResponse();
    }
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalidResponse();
    let out: Record<string, unknown>;
    if (isOllama) {
      const { data, usage } = fromOllama(doc, inputs.length, body.encoding_format === 'base64');
      outcome.usage = usage;
      const u = usage ?? { prompt_tokens: promptEstimate, total_tokens: promptEstimate };
      out = { object: 'list', data, model: body.model, usage: u };
    } else {
      if (!Array.isArray(doc.data)) throw invalidResponse();
      const u = doc.usage as Partial<EmbeddingUsage> | undefined;
      outcome.usage =
        u && typeof u.prompt_tokens === 'number'
          ? {
              prompt_tokens: u.prompt_tokens,
              total_tokens: typeof u.total_tokens === 'number' ? u.total_tokens : u.prompt_tokens,
            }
          : null;
      out = { ...doc, model: body.model };
    }
    outcome.status = 'completed';
    outcome.httpStatus = 200;
    reply.header('server-timing', serverTiming(timing, reply.elapsedTime));
    reply.type('application/json');
    return out;
  } catch (e) {
    if (client.gone) outcome.status = 'aborted';
    const err = transportError(e);
    outcome.httpStatus = err.status;
    throw err;
  } finally {
    done();
  }
}
