import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { AppError } from '../../platform/http/errors.js';
import { actorOf } from '../access/index.js';
import type { OpenConnection } from '../connections/service.js';
import { upstreamHeaders, type UpstreamResponse } from '../connections/transport.js';
import { clientModelId } from '../models/catalog.js';
import { estimatePromptTokens, limitSubject, transportError, watchClient } from './chat.js';
import type { GatewayServices } from './services.js';
import { SseRelay, type Usage } from './stream.js';

/**
 * `/api/openai/{path}`: forwards to an admin OpenAI connection with the admin key — only when
 * ENABLE_OPENAI_API_PASSTHROUGH=true (403 otherwise). It is still a gateway route: the caller is
 * authenticated, a `model` named in the body must be granted (and allowed by the API key), the
 * user's/key's/model's limits and budgets apply, usage is recorded and every call is audited.
 * The connection is the first enabled admin OpenAI connection, or the one named by the
 * `X-HridaAI-Connection` header.
 */

const SAFE_PATH = /^[A-Za-z0-9._~\-/:@]+$/;
const USAGE_TAP_BYTES = 1024 * 1024;
const PASS_HEADERS = ['content-type', 'openai-organization', 'openai-processing-ms', 'x-request-id'];

function checkPath(p: string): string {
  if (!p || !SAFE_PATH.test(p) || p.includes('//') || p.split('/').some((s) => s === '.' || s === '..'))
    throw new AppError('validation_failed', 'Invalid pass-through path');
  return p.replace(/^\/+/, '');
}

export async function handlePassthrough(
  svc: GatewayServices,
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  rawPath: string,
): Promise<unknown> {
  if (!ctx.config.ENABLE_OPENAI_API_PASSTHROUGH)
    throw new AppError('passthrough_disabled', 'The OpenAI pass-through is disabled on this server');
  const actor = actorOf(ctx, req);
  const path = checkPath(rawPath);
  const qi = req.url.indexOf('?');
  const search = qi >= 0 ? req.url.slice(qi) : '';
  if (/[\s#\\]/.test(search)) throw new AppError('validation_failed', 'Invalid query string');

  const snap = await svc.catalog.snapshot();
  const wanted = req.headers['x-hridaai-connection'];
  const conn: OpenConnection | undefined =
    typeof wanted === 'string'
      ? snap.connections.find((c) => c.id === wanted && c.type === 'openai')
      : snap.connections.find((c) => c.type === 'openai');
  if (!conn) throw new AppError('not_found', 'No OpenAI connection is available for the pass-through');
  // Belt and braces: whatever the path, the request stays below the connection's base URL.
  const basePath = new URL(conn.baseUrl).pathname.replace(/\/+$/, '');
  if (!new URL(`${conn.baseUrl}/${path}`).pathname.startsWith(`${basePath}/`))
    throw new AppError('validation_failed', 'Invalid pass-through path');

  const body =
    req.body && typeof req.body === 'object' ? ({ ...(req.body as object) } as Record<string, unknown>) : null;
  const modelIds: string[] = [];
  if (body && typeof body.model === 'string') {
    const id = clientModelId(conn, body.model);
    const ok = await svc.access.readable(actor, [id]);
    if (!ok.has(id))
      throw new AppError(
        'model_not_found',
        `The model ${JSON.stringify(body.model.slice(0, 256))} does not exist or you do not have access to it`,
      );
    modelIds.push(id);
  }
  const subject = await limitSubject(svc, ctx, actor, modelIds);
  const promptEstimate = body
    ? estimatePromptTokens(body.messages ?? (body.input ? [{ content: body.input }] : []))
    : 0;
  let maxTokens =
    body && typeof (body.max_completion_tokens ?? body.max_tokens) === 'number'
      ? Number(body.max_completion_tokens ?? body.max_tokens)
      : null;
  if (body && Array.isArray(body.messages) && maxTokens === null && (await svc.limits.tokenLimited(subject))) {
    maxTokens = ctx.config.GATEWAY_DEFAULT_MAX_TOKENS;
    body.max_tokens = maxTokens;
  }
  const reservation = promptEstimate + (maxTokens ?? 0);
  const lease = await svc.limits.acquire(reply, subject, reservation, req.id);

  const started = Date.now();
  const res = reply.raw;
  const client = watchClient(res);
  const controller = client.controller;
  let status = 502;
  let usage: Usage | null = null;
  let outcome: 'completed' | 'error' | 'aborted' = 'error';
  let chunks = 0;
  const end = () => {
    client.release();
    const prompt = usage?.prompt_tokens ?? promptEstimate;
    const completion = usage?.completion_tokens ?? chunks;
    const total = usage?.total_tokens ?? prompt + completion;
    svc.usage.record({
      created_at: started,
      request_id: req.id,
      route: 'passthrough',
      user_id: actor.userId,
      actor_id: actor.actorId !== actor.userId ? actor.actorId : null,
      key_id: actor.apiKey?.id ?? null,
      model_id: modelIds[0] ?? null,
      base_model_id: modelIds[0] ?? null,
      connection_id: conn.id,
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: total,
      usage_source: usage ? 'upstream' : 'estimated',
      status: client.gone ? 'aborted' : outcome,
      http_status: status,
      stream: body?.stream === true ? 1 : 0,
      duration_ms: Date.now() - started,
      ttft_ms: null,
    });
    void svc.limits.finish(lease, total);
    void ctx.audit
      .record(ctx.db, {
        action: 'gateway.passthrough',
        ...fromRequest(req),
        resourceType: 'model_connection',
        resourceId: conn.id,
        result: status < 400 ? 'success' : 'failure',
        details: { method: req.method, path, status, model: modelIds[0] ?? null },
      })
      .catch((e: unknown) => ctx.log.error({ err: (e as Error).message }, 'Could not audit a pass-through call'));
  };

  let upstream: UpstreamResponse;
  try {
    upstream = await svc.transports.send(conn, {
      method: req.method as 'GET',
      path: `/${path}${search}`,
      headers: upstreamHeaders(conn, {
        ...(body ? { 'content-type': 'application/json' } : {}),
        accept: typeof req.headers.accept === 'string' ? req.headers.accept.slice(0, 200) : '*/*',
      }),
      body: body ? JSON.stringify(body) : undefined,
      signal: controller.signal,
      headersTimeoutMs: ctx.config.GATEWAY_UPSTREAM_HEADERS_TIMEOUT * 1000,
      idleTimeoutMs: ctx.config.GATEWAY_STREAM_IDLE_TIMEOUT * 1000,
    });
  } catch (e) {
    const err = transportError(e);
    status = err.status;
    end();
    throw err;
  }

  status = upstream.status;
  const type = upstream.headers['content-type'] ?? '';
  const sse = type.includes('text/event-stream') ? new SseRelay(true) : null;
  const tap: Buffer[] = [];
  let tapped = 0;
  reply.hijack();
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = String(v);
  for (const h of PASS_HEADERS) if (upstream.headers[h]) headers[h] = upstream.headers[h]!;
  try {
    res.writeHead(upstream.status, headers);
    for await (const c of upstream.body as AsyncIterable<Buffer>) {
      if (client.gone) break;
      if (sse) sse.push(c);
      else if (tapped < USAGE_TAP_BYTES) {
        tap.push(c);
        tapped += c.length;
      }
      if (!res.write(c))
        await new Promise<void>((r) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            r();
          };
          res.on('drain', done);
          res.on('close', done);
        });
    }
    if (sse) {
      sse.end();
      usage = sse.stats.usage;
      chunks = sse.stats.chunks;
    } else if (tapped < USAGE_TAP_BYTES && type.includes('json')) {
      try {
        const u = (JSON.parse(Buffer.concat(tap).toString('utf8')) as { usage?: Usage }).usage;
        if (u && typeof u.prompt_tokens === 'number')
          usage = {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens ?? 0,
            total_tokens: u.total_tokens ?? u.prompt_tokens + (u.completion_tokens ?? 0),
          };
      } catch {
        /* not JSON: estimated usage */
      }
    }
    outcome = upstream.status < 400 ? 'completed' : 'error';
    if (!client.gone) res.end();
  } catch {
    outcome = 'error';
    if (!client.gone) res.destroy();
  } finally {
    if (client.gone) upstream.body.destroy();
    end();
  }
  return reply;
}
