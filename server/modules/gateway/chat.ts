import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { AppContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import { actorOf, type Actor } from '../access/index.js';
import { openChatLink } from '../chats/gateway-link.js';
import {
  citationSystemMessage,
  lastUserText,
  openAttachments,
  presetAttachments,
  retrieveAttached,
  type Attachment,
  type Citation,
} from '../knowledge/attach.js';
import type { ConnectionModel, Resolved } from '../models/catalog.js';
import { readCapped, UpstreamError, upstreamHeaders, type UpstreamResponse } from '../connections/transport.js';
import type { Lease, LimitSubject } from './limits.js';
import type { GatewayServices } from './services.js';
import {
  errorEvent,
  fromOllamaResponse,
  JsonAsSseRelay,
  OllamaRelay,
  SseRelay,
  toOllamaRequest,
  UPSTREAM_STREAM_ERROR,
  type Relay,
  type Usage,
} from './stream.js';
import type { UsageRow } from './usage.js';

/**
 * The chat completion hot path: (key or session already checked) → body validated → model
 * resolved through its presets → grant on every model of the chain → limits and budgets taken
 * atomically → dispatch → the response passes through as it arrives. Usage and limit settlement
 * happen after the bytes are on their way.
 */

export type ChatBody = Record<string, unknown> & {
  model: string;
  messages: Record<string, unknown>[];
  stream?: boolean;
  stream_options?: Record<string, unknown> | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  n?: number | null;
};

/** A conservative prompt-size estimate (bytes / 3 plus overheads) for reservations and fallback usage. */
export function estimatePromptTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let chars = 0;
  let images = 0;
  for (const m of messages as { content?: unknown; tool_calls?: unknown; name?: unknown }[]) {
    const c = m?.content;
    if (typeof c === 'string') chars += c.length;
    else if (Array.isArray(c))
      for (const part of c as { type?: string; text?: unknown }[]) {
        if (typeof part?.text === 'string') chars += part.text.length;
        else if (part?.type === 'image_url' || part?.type === 'input_audio' || part?.type === 'file') images += 1;
      }
    if (m?.tool_calls) chars += JSON.stringify(m.tool_calls).length;
  }
  return Math.ceil(chars / 3) + messages.length * 4 + images * 1000;
}

function maxTokensOf(body: Record<string, unknown>): number | null {
  const v = body.max_completion_tokens ?? body.max_tokens;
  return typeof v === 'number' && v > 0 ? v : null;
}

/** Preset parameters and system prompts applied to the client body; the upstream model id set. */
export function buildUpstreamBody(body: ChatBody, resolved: Resolved): Record<string, unknown> {
  // HridaAI's own fields (`chat_id`, `files`) are never sent upstream. Copied key by key rather
  // than spread-then-delete: `delete` turns the object into a slow dictionary for JSON.stringify.
  const out: Record<string, unknown> = {};
  for (const k in body) if (k !== 'chat_id' && k !== 'files') out[k] = body[k];
  if (resolved.chain.length === 0) {
    out.model = resolved.base.upstreamId;
    return out;
  }
  const systems: string[] = [];
  // Innermost preset first, so an outer preset's parameters win over the one it is built on.
  for (const p of [...resolved.chain].reverse()) {
    let params: Record<string, unknown> = {};
    try {
      params = JSON.parse(p.params) as Record<string, unknown>;
    } catch {
      params = {};
    }
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) out[k] = v;
    if (p.system_prompt) systems.push(p.system_prompt);
  }
  if (systems.length) out.messages = [{ role: 'system', content: systems.join('\n\n') }, ...body.messages];
  out.model = resolved.base.upstreamId;
  return out;
}

export interface Timing {
  /** HridaAI time before the upstream was called (ms since the request arrived). */
  pre: number;
  /** When the upstream's first usable bytes arrived. */
  firstUpstream: number;
}

/** The `Server-Timing` value: HridaAI's own time (before dispatch and after the upstream answered) and the upstream's. */
export function serverTiming(t: Timing, sendAt: number): string {
  const own = t.pre + Math.max(0, sendAt - t.firstUpstream);
  return `gateway;dur=${own.toFixed(3)};desc="HridaAI overhead", upstream;dur=${Math.max(0, t.firstUpstream - t.pre).toFixed(3)}`;
}

/** A clean message from an upstream error body (never the body itself; secrets scrubbed). */
function upstreamMessage(buf: Buffer): string | null {
  try {
    const doc = JSON.parse(buf.toString('utf8')) as { error?: unknown; message?: unknown };
    const m =
      typeof doc.error === 'string'
        ? doc.error
        : typeof (doc.error as { message?: unknown })?.message === 'string'
          ? ((doc.error as { message: string }).message as string)
          : typeof doc.message === 'string'
            ? doc.message
            : null;
    if (!m) return null;
    return m
      .replace(/\b(sk|pk|rk|key|tok)[-_][A-Za-z0-9_-]{6,}/gi, '[redacted]')
      .replace(/Bearer\s+\S+/gi, 'Bearer [redacted]')
      .replace(/[\r\n\0]/g, ' ')
      .slice(0, 300);
  } catch {
    return null;
  }
}

/** Maps an upstream's non-2xx answer to HridaAI's error (before any byte went to the client). */
export async function upstreamStatusError(res: UpstreamResponse, reply: FastifyReply | null): Promise<AppError> {
  let buf: Buffer = Buffer.alloc(0);
  try {
    buf = await readCapped(res.body, 64 * 1024);
  } catch {
    res.body.destroy();
  }
  const s = res.status;
  const msg = upstreamMessage(buf);
  if (s === 400 || s === 413 || s === 422)
    return new AppError('upstream_rejected', `The model server rejected the request${msg ? `: ${msg}` : ''}`, {
      upstream_status: s,
    });
  if (s === 404)
    return new AppError('model_not_found', 'The model server does not know this model', { upstream_status: s });
  if (s === 429) {
    const ra = res.headers['retry-after'];
    if (ra && /^\d{1,6}$/.test(ra.trim())) reply?.header('retry-after', ra.trim());
    return new AppError('upstream_rate_limited', 'The model server is rate limiting requests; try again later', {
      upstream_status: s,
    });
  }
  if (s === 401 || s === 403)
    return new AppError('upstream_error', 'The model server refused HridaAI’s credentials (check the connection)', {
      upstream_status: s,
    });
  if (s === 408 || s === 504)
    return new AppError('upstream_timeout', 'The model server timed out', { upstream_status: s });
  return new AppError('upstream_error', `The model server failed (HTTP ${s})`, { upstream_status: s });
}

export function transportError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  const u = e instanceof UpstreamError ? e : new UpstreamError('unreachable', 'The model server could not be reached');
  if (u.kind === 'timeout') return new AppError('upstream_timeout', u.message);
  if (u.kind === 'blocked') return new AppError('forbidden', `The connection’s address is not allowed: ${u.message}`);
  return new AppError('upstream_error', u.message);
}

/** Limits of a request: who, and which models. */
export async function limitSubject(
  svc: GatewayServices,
  ctx: AppContext,
  actor: Actor,
  modelIds: string[],
): Promise<LimitSubject> {
  const groupIds = (await svc.limits.usesGroups()) ? await svc.limits.groupsOf(actor, ctx) : [];
  return { userId: actor.userId, keyId: actor.apiKey?.id ?? null, groupIds, modelIds };
}

interface Outcome {
  status: UsageRow['status'];
  httpStatus: number;
  usage: Usage | null;
  completionEstimate: number;
  ttft: number | null;
}

/** Runs after the response: usage row, limit settlement. Never throws. */
function finish(
  svc: GatewayServices,
  req: FastifyRequest,
  actor: Actor,
  resolved: Resolved,
  lease: Lease,
  promptEstimate: number,
  started: number,
  stream: boolean,
  o: Outcome,
): void {
  const usage = o.usage;
  const prompt = usage?.prompt_tokens ?? promptEstimate;
  const completion = usage?.completion_tokens ?? o.completionEstimate;
  const total = usage?.total_tokens ?? prompt + completion;
  svc.usage.record({
    created_at: started,
    request_id: req.id,
    route: 'chat',
    user_id: actor.userId,
    actor_id: actor.actorId !== actor.userId ? actor.actorId : null,
    key_id: actor.apiKey?.id ?? null,
    model_id: resolved.requested,
    base_model_id: resolved.base.id,
    connection_id: resolved.base.connection.id,
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: total,
    usage_source: usage ? 'upstream' : 'estimated',
    status: o.status,
    http_status: o.httpStatus,
    stream: stream ? 1 : 0,
    duration_ms: Math.round(Date.now() - started),
    ttft_ms: o.ttft === null ? null : Math.round(o.ttft),
  });
  void svc.limits.finish(lease, total);
}

/** Sends a request to the base model's connection, translating for Ollama. */
async function dispatch(
  svc: GatewayServices,
  ctx: AppContext,
  base: ConnectionModel,
  upstreamBody: Record<string, unknown>,
  stream: boolean,
  signal: AbortSignal,
): Promise<UpstreamResponse> {
  const conn = base.connection;
  const c = ctx.config;
  const isOllama = conn.type === 'ollama';
  const payload = isOllama ? toOllamaRequest(upstreamBody, base.upstreamId, stream) : upstreamBody;
  return svc.transports.send(conn, {
    method: 'POST',
    path: isOllama ? '/api/chat' : '/chat/completions',
    headers: upstreamHeaders(conn, {
      'content-type': 'application/json',
      accept: stream ? (isOllama ? 'application/x-ndjson' : 'text/event-stream') : 'application/json',
    }),
    body: JSON.stringify(payload),
    signal,
    headersTimeoutMs: c.GATEWAY_UPSTREAM_HEADERS_TIMEOUT * 1000,
    idleTimeoutMs: c.GATEWAY_STREAM_IDLE_TIMEOUT * 1000,
  });
}

/** The client's side of a gateway request: `gone` once it disconnected before its response was finished. */
export interface ClientWatch {
  /** Aborted (reason: UpstreamError 'aborted') when the client goes away; timeouts abort it too. */
  readonly controller: AbortController;
  gone: boolean;
  /** Stops watching (call when the request is over). */
  release(): void;
}

/** Watches the response for an early close and aborts the upstream call when it happens. */
export function watchClient(res: ServerResponse): ClientWatch {
  const onClose = () => {
    if (!res.writableFinished) {
      w.gone = true;
      w.controller.abort(new UpstreamError('aborted', 'The client went away'));
    }
  };
  const w: ClientWatch = { controller: new AbortController(), gone: false, release: () => res.off('close', onClose) };
  res.once('close', onClose);
  return w;
}

/** The SSE event that carries the citations of a streamed completion (sent before the first chunk). */
export function citationsEvent(citations: Citation[]): string {
  return `data: ${JSON.stringify({ object: 'hridaai.citations', citations })}\n\n`;
}

/**
 * Passages for the request's attachments and its presets' knowledge, or null when nothing is
 * attached. Throws 404 for a named file or knowledge base the caller may not read.
 */
async function knowledgeFor(
  ctx: AppContext,
  actor: Actor,
  body: ChatBody,
  resolved: Resolved,
): Promise<Citation[] | null> {
  const named = (Array.isArray(body.files) ? body.files : []) as Attachment[];
  const preset = { knowledgeIds: [] as string[], fileIds: [] as string[] };
  for (const p of resolved.chain) {
    const a = presetAttachments(p);
    preset.knowledgeIds.push(...a.knowledgeIds);
    preset.fileIds.push(...a.fileIds);
  }
  const opened = await openAttachments(ctx, actor, named, preset);
  if (!opened) return null;
  return retrieveAttached(ctx, actor, opened, lastUserText(body.messages));
}

export async function handleChat(
  svc: GatewayServices,
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  body: ChatBody,
): Promise<unknown> {
  const actor = actorOf(ctx, req);
  const resolved = await svc.catalog.resolve(body.model, actor.userId);
  await svc.access.assertUsable(actor, body.model, resolved.ids, resolved.chain);
  // `chat_id`: only a chat the caller owns (404 before anything is dispatched); never sent upstream.
  const chatLink =
    body.chat_id === undefined || body.chat_id === null
      ? null
      : await openChatLink(ctx, { id: actor.userId, role: actor.role, active: actor.active ? 1 : 0 }, body);
  // `files` and the presets' knowledge: every named id authorised (404 before anything is
  // dispatched); preset attachments only where the caller may read them; never sent upstream.
  const citations =
    (body.files === undefined || body.files === null) && resolved.chain.length === 0
      ? null
      : await knowledgeFor(ctx, actor, body, resolved);

  const stream = body.stream === true;
  const upstreamBody = buildUpstreamBody(body, resolved);
  if (citations?.length)
    upstreamBody.messages = [
      { role: 'system', content: citationSystemMessage(citations) },
      ...(upstreamBody.messages as unknown[]),
    ];
  if (chatLink?.memory)
    upstreamBody.messages = [{ role: 'system', content: chatLink.memory }, ...(upstreamBody.messages as unknown[])];
  const clientWantsUsage =
    stream && (body.stream_options as { include_usage?: unknown } | null)?.include_usage === true;
  if (stream) upstreamBody.stream_options = { ...((body.stream_options as object | null) ?? {}), include_usage: true };

  const subject = await limitSubject(svc, ctx, actor, resolved.ids);
  const promptEstimate = estimatePromptTokens(upstreamBody.messages);
  const n = typeof upstreamBody.n === 'number' && upstreamBody.n > 1 ? Math.min(upstreamBody.n, 128) : 1;
  let maxTokens = maxTokensOf(upstreamBody);
  if (maxTokens === null && (await svc.limits.tokenLimited(subject))) {
    maxTokens = ctx.config.GATEWAY_DEFAULT_MAX_TOKENS;
    upstreamBody.max_tokens = maxTokens;
  }
  const reservation = promptEstimate + (maxTokens ?? ctx.config.GATEWAY_DEFAULT_MAX_TOKENS) * n;
  const lease = await svc.limits.acquire(reply, subject, reservation, req.id);

  const started = Date.now();
  const res = reply.raw;
  const client = watchClient(res);
  const controller = client.controller;
  const timing: Timing = { pre: reply.elapsedTime, firstUpstream: 0 };
  const outcome: Outcome = { status: 'error', httpStatus: 502, usage: null, completionEstimate: 0, ttft: null };
  const done = () => {
    client.release();
    finish(svc, req, actor, resolved, lease, promptEstimate, started, stream, outcome);
    if (chatLink) void chatLink.finish(outcome.status, outcome.usage, citations);
  };

  let upstream: UpstreamResponse;
  try {
    upstream = await dispatch(svc, ctx, resolved.base, upstreamBody, stream, controller.signal);
    if (upstream.status < 200 || upstream.status >= 300) {
      const err = await upstreamStatusError(upstream, reply);
      outcome.httpStatus = err.status;
      throw err;
    }
  } catch (e) {
    if (client.gone) outcome.status = 'aborted';
    const err = transportError(e);
    outcome.httpStatus = err.status;
    done();
    throw err;
  }

  if (!stream) {
    try {
      const buf = await readCapped(upstream.body, ctx.config.GATEWAY_MAX_BODY_SIZE);
      timing.firstUpstream = reply.elapsedTime;
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new AppError('upstream_error', 'The model server sent an invalid response');
      }
      let out: Buffer | Record<string, unknown> = buf;
      if (resolved.base.connection.type === 'ollama') {
        out = fromOllamaResponse(doc, body.model, `chatcmpl-${req.id}`, Math.floor(started / 1000));
        doc = out;
      }
      const u = doc.usage as Usage | undefined;
      outcome.usage = u && typeof u.prompt_tokens === 'number' ? u : null;
      const content = (doc.choices as { message?: { content?: unknown } }[] | undefined)?.[0]?.message?.content;
      outcome.completionEstimate = typeof content === 'string' ? Math.ceil(content.length / 4) : 0;
      chatLink?.reply(doc);
      if (citations) out = { ...doc, citations };
      outcome.status = 'completed';
      outcome.httpStatus = 200;
      outcome.ttft = reply.elapsedTime - timing.pre;
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

  // ---- streaming
  const relay: Relay =
    resolved.base.connection.type === 'ollama'
      ? new OllamaRelay(body.model, `chatcmpl-${req.id}`, Math.floor(started / 1000), clientWantsUsage)
      : (upstream.headers['content-type'] ?? '').includes('text/event-stream')
        ? new SseRelay(clientWantsUsage)
        : new JsonAsSseRelay(clientWantsUsage, ctx.config.GATEWAY_MAX_BODY_SIZE);
  const idleMs = ctx.config.GATEWAY_STREAM_IDLE_TIMEOUT * 1000;
  const watchdog = setTimeout(
    () => controller.abort(new UpstreamError('timeout', 'The model server stopped sending')),
    idleMs,
  );
  const total = setTimeout(
    () => controller.abort(new UpstreamError('timeout', 'The response took too long')),
    ctx.config.GATEWAY_REQUEST_TIMEOUT * 1000,
  );
  total.unref();
  const up = upstream.body;
  let headersSent = false;
  try {
    // Upstream chunks are handled as they arrive ('data' events; paused while the client's socket
    // is full). Nothing is sent until there is an event to send: an upstream failure before that
    // is a proper HTTP error; after it, a terminal error event.
    await new Promise<void>((resolve, reject) => {
      let first = '';
      let draining = false;
      let stopped = false;
      const stop = (e?: unknown) => {
        if (stopped) return;
        stopped = true;
        // The 'error' listener stays: an abort (client gone, timeout) destroys the body with an error later.
        up.off('data', onData);
        up.off('end', onEnd);
        up.off('close', onUpClose);
        res.off('drain', onDrain);
        res.off('close', onResClose);
        if (e === undefined) resolve();
        else reject(e);
      };
      /** Sends one piece; false when the stream was stopped instead. */
      const send = (out: string): boolean => {
        if (!headersSent) {
          first += out;
          if (relay.stats.upstreamError && !first.replace(UPSTREAM_STREAM_ERROR(), '')) {
            stop(new AppError('upstream_error', 'The model server failed before sending a response'));
            return false;
          }
          if (!first) return true;
          timing.firstUpstream = reply.elapsedTime;
          reply.hijack();
          const headers: Record<string, string | number | string[]> = {};
          for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v as string;
          headers['content-type'] = 'text/event-stream; charset=utf-8';
          headers['cache-control'] = 'no-cache';
          headers['x-accel-buffering'] = 'no';
          headers['server-timing'] = serverTiming(timing, reply.elapsedTime);
          res.writeHead(200, headers);
          headersSent = true;
          outcome.httpStatus = 200;
          outcome.ttft = reply.elapsedTime - timing.pre;
          chatLink?.collect(first);
          out = citations ? citationsEvent(citations) + first : first;
        } else chatLink?.collect(out);
        if (!res.write(out) && !draining) {
          draining = true;
          up.pause();
          res.once('drain', onDrain);
        }
        return true;
      };
      const onDrain = () => {
        draining = false;
        up.resume();
      };
      const onData = (chunk: Buffer) => {
        try {
          watchdog.refresh();
          const out = relay.push(chunk);
          // (An upstream error before anything was sent goes through send: it becomes an HTTP error.)
          if ((out || (!headersSent && relay.stats.upstreamError)) && !send(out)) return;
          if (relay.stats.upstreamError) stop(); // the relay ended the stream with its error event
        } catch (e) {
          stop(e);
        }
      };
      const onEnd = () => {
        try {
          const out = relay.end();
          if (out && !send(out)) return;
          if (!headersSent) stop(new AppError('upstream_error', 'The model server sent an empty response'));
          else stop();
        } catch (e) {
          stop(e);
        }
      };
      const onError = (e: Error) => stop(e);
      // Destroyed without an error (should not happen: aborts carry their reason): the body ended short.
      const onUpClose = () => stop(new UpstreamError('aborted', 'The model server’s response ended early'));
      // The client went away: the upstream request is aborted (watchClient); stop here as well.
      const onResClose = () => {
        if (client.gone) stop(headersSent ? undefined : new UpstreamError('aborted', 'The client went away'));
      };
      up.on('data', onData);
      up.once('end', onEnd);
      up.on('error', onError);
      up.once('close', onUpClose);
      res.once('close', onResClose);
    });
    if (!headersSent) throw new AppError('upstream_error', 'The model server sent an empty response');
    if (relay.stats.upstreamError) outcome.status = 'error';
    else if (client.gone) outcome.status = 'aborted';
    else outcome.status = 'completed';
    if (!client.gone) res.end();
  } catch (e) {
    if (client.gone) outcome.status = 'aborted';
    else outcome.status = 'error';
    if (!headersSent) {
      const err = transportError(e);
      outcome.httpStatus = err.status;
      throw err;
    }
    // After the first byte: a terminal error event, then the end of the stream.
    if (!client.gone && !res.writableEnded) {
      const err = transportError(e);
      res.end(
        err.code === 'upstream_timeout' ? errorEvent(err.message, 'timeout_error', err.code) : UPSTREAM_STREAM_ERROR(),
      );
    }
  } finally {
    clearTimeout(watchdog);
    clearTimeout(total);
    outcome.usage = relay.stats.usage;
    outcome.completionEstimate = relay.stats.chunks;
    if (!relay.stats.done || client.gone) upstream.body.destroy();
    done();
  }
  return reply;
}
