import type { Readable } from 'node:stream';
import type { Agent } from 'undici';
import type { Config } from '../../config/index.js';
import { createOutboundAgent, createSafeFetch, UrlBlockedError, type SafeFetch } from '../../platform/net/index.js';
import { FetchError } from '../../platform/net/errors.js';
import type { OpenConnection } from './service.js';

/**
 * How HridaAI reaches an upstream. Admin-configured connections get one keep-alive undici Agent
 * each (certificate verification per AIOHTTP_CLIENT_SESSION_SSL, metadata endpoints refused,
 * OFFLINE_MODE refuses public addresses — platform/net). A user's direct connection goes through safe-fetch: private addresses, metadata
 * endpoints, WEB_FETCH_FILTER_LIST and redirects are refused exactly as for any URL a person typed
 * (and direct connections are unavailable under OFFLINE_MODE).
 */

export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Appended to the connection's base URL (starts with `/`). */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  signal?: AbortSignal;
  /** Time to the response headers. */
  headersTimeoutMs: number;
  /** Longest silence between two body chunks. */
  idleTimeoutMs: number;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string>;
  body: Readable;
}

export type UpstreamFailure = 'timeout' | 'unreachable' | 'blocked' | 'aborted' | 'bad_response';

/** The upstream could not be reached or did not answer in time (never carries upstream bodies). */
export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailure,
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

function flat(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

export function mapTransportError(e: unknown, signal?: AbortSignal): UpstreamError {
  if (e instanceof UpstreamError) return e;
  if (e instanceof UrlBlockedError) return new UpstreamError('blocked', e.message);
  if (e instanceof FetchError) {
    if (e.reason === 'timeout') return new UpstreamError('timeout', 'The model server did not answer in time');
    if (e.reason === 'aborted') return new UpstreamError('aborted', 'The request was cancelled');
    if (e.reason === 'bad_response' || e.reason === 'too_large')
      return new UpstreamError('bad_response', 'The model server sent an invalid response');
    return new UpstreamError('unreachable', 'The model server could not be reached');
  }
  const code = (e as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT')
    return new UpstreamError('timeout', 'The model server did not answer in time');
  if (signal?.aborted) {
    const reason = signal.reason as unknown;
    if (reason instanceof UpstreamError) return reason;
    return new UpstreamError('aborted', 'The request was cancelled');
  }
  if ((e as Error)?.name === 'AbortError') return new UpstreamError('aborted', 'The request was cancelled');
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH')
    return new UpstreamError('bad_response', 'The model server sent an invalid response');
  if (code.includes('CERT') || code.startsWith('ERR_TLS') || code.startsWith('UNABLE_TO'))
    return new UpstreamError('unreachable', 'The model server’s TLS certificate could not be verified');
  return new UpstreamError('unreachable', 'The model server could not be reached');
}

/** Authorization and configured headers for a connection. */
export function upstreamHeaders(conn: OpenConnection, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { ...extra };
  if (conn.apiKey) h['authorization'] = `Bearer ${conn.apiKey}`;
  for (const [k, v] of Object.entries(conn.headers)) h[k.toLowerCase()] = v;
  return h;
}

export class Transports {
  private readonly agents = new Map<string, { agent: Agent; version: number }>();
  private safe: SafeFetch | null = null;
  private readonly targets = new Map<string, { origin: string; path: string }>();

  constructor(private readonly config: Config) {}

  private agentFor(conn: OpenConnection): Agent {
    const cur = this.agents.get(conn.id);
    if (cur && cur.version === conn.updatedAt) return cur.agent;
    if (cur) void cur.agent.close().catch(() => undefined);
    const agent = createOutboundAgent(this.config, 'model', {
      headersTimeoutMs: this.config.GATEWAY_UPSTREAM_HEADERS_TIMEOUT * 1000,
      bodyTimeoutMs: this.config.GATEWAY_STREAM_IDLE_TIMEOUT * 1000,
    });
    this.agents.set(conn.id, { agent, version: conn.updatedAt });
    return agent;
  }

  private safeFetch(): SafeFetch {
    this.safe ??= createSafeFetch(this.config, {
      purpose: 'model',
      maxBytes: this.config.GATEWAY_MAX_BODY_SIZE * 4,
      timeoutMs: this.config.GATEWAY_REQUEST_TIMEOUT * 1000,
      userAgent: 'HridaAI',
    });
    return this.safe;
  }

  /** Drops the pooled sockets of a connection that changed or was deleted. */
  forget(id: string): void {
    const cur = this.agents.get(id);
    if (cur) {
      this.agents.delete(id);
      void cur.agent.close().catch(() => undefined);
    }
  }

  /** Origin and path of a connection URL, parsed once per connection version and path. */
  private target(conn: OpenConnection, path: string): { origin: string; path: string } {
    const k = `${conn.id}\u0000${conn.updatedAt}\u0000${conn.baseUrl}\u0000${path}`;
    let t = this.targets.get(k);
    if (!t) {
      const url = new URL(conn.baseUrl + path);
      t = { origin: url.origin, path: `${url.pathname}${url.search}` };
      if (this.targets.size >= 1000) this.targets.clear();
      this.targets.set(k, t);
    }
    return t;
  }

  async send(conn: OpenConnection, req: UpstreamRequest): Promise<UpstreamResponse> {
    const headers = { ...req.headers };
    if (conn.ownerId === null) {
      const agent = this.agentFor(conn);
      const target = this.target(conn, req.path);
      headers['accept-encoding'] = 'identity';
      try {
        const res = await agent.request({
          origin: target.origin,
          path: target.path,
          method: req.method,
          headers,
          body: req.body,
          signal: req.signal,
          headersTimeout: req.headersTimeoutMs,
          bodyTimeout: req.idleTimeoutMs,
        });
        return { status: res.statusCode, headers: flat(res.headers), body: res.body as unknown as Readable };
      } catch (e) {
        throw mapTransportError(e, req.signal);
      }
    }
    // A user's own connection: every SSRF rule applies; the headers deadline is ours.
    const url = new URL(conn.baseUrl + req.path);
    const controller = new AbortController();
    const onAbort = () => controller.abort(req.signal?.reason);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => controller.abort(new UpstreamError('timeout', 'The model server did not answer in time')),
      req.headersTimeoutMs,
    );
    try {
      const res = await this.safeFetch().fetch(url, {
        method: req.method,
        headers,
        body: req.body,
        signal: controller.signal,
        redirect: 'error',
      });
      return { status: res.status, headers: res.headers, body: res.body };
    } catch (e) {
      throw mapTransportError(e, controller.signal);
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    const all = [...this.agents.values()].map((a) => a.agent.close().catch(() => undefined));
    this.agents.clear();
    if (this.safe) all.push(this.safe.close().catch(() => undefined));
    this.safe = null;
    await Promise.all(all);
  }
}

/** Reads a body up to `max` bytes (error beyond). Event-based: no async iterator per response. */
export function readCapped(body: Readable, max: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const cleanup = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    };
    const onData = (c: Buffer) => {
      n += c.length;
      if (n > max) {
        cleanup();
        body.destroy();
        reject(new UpstreamError('bad_response', 'The model server’s response is too large'));
        return;
      }
      parts.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, n));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    // Destroyed without an error (an abort): the body ends short.
    const onClose = () => {
      cleanup();
      reject(new UpstreamError('aborted', 'The response ended before it was complete'));
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
  });
}
