import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { Agent } from 'undici';
import { checkedConnector, verifiedBaseConnector, type Connector, type ConnectInfo } from './connector.js';
import { FetchError, UrlBlockedError } from './errors.js';
import { EMPTY_FILTER } from './filter.js';
import { filterOf, outboundTls, type NetConfig, type OutboundPurpose } from './outbound.js';
import { defaultPolicyOptions, UrlPolicy, type CheckedTarget, type Resolver } from './policy.js';

export interface SafeFetchOptions {
  /** Picks the certificate-verification setting (default `web_loader`). */
  purpose?: OutboundPurpose;
  /** Replaces DNS (tests). */
  resolver?: Resolver;
  /** Reach private addresses even when ENABLE_RAG_LOCAL_WEB_FETCH=false (admin-level callers). */
  allowPrivate?: boolean;
  /** Apply WEB_FETCH_FILTER_LIST (default true). */
  useFilterList?: boolean;
  /** Replaces the socket layer (tests only); it receives the already-checked address. */
  connector?: Connector;
  /** Observer called with every address a socket is opened to. */
  onConnect?: (i: ConnectInfo) => void;
  /** Default cap on the response body, compressed and decompressed (10 MiB). */
  maxBytes?: number;
  /** Default total time for a request including its body (30 s). */
  timeoutMs?: number;
  /** Hop limit when redirects are followed (5). */
  maxRedirects?: number;
  userAgent?: string;
}

export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer | Uint8Array;
  maxBytes?: number;
  timeoutMs?: number;
  /**
   * `follow`: follow when AIOHTTP_CLIENT_ALLOW_REDIRECTS=true, else refuse (the default);
   * `error`: always refuse a 3xx; `manual`: return the 3xx response untouched.
   */
  redirect?: 'follow' | 'error' | 'manual';
  signal?: AbortSignal;
}

export interface SafeResponse {
  status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The final URL (after the redirects that were followed). */
  url: string;
  redirects: string[];
  /** Decompressed body, capped at maxBytes. */
  body: Readable;
  buffer(): Promise<Buffer>;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  /** Discards the body and releases the connection. */
  dispose(): void;
}

export interface SafeFetch {
  fetch(url: string | URL, init?: FetchInit): Promise<SafeResponse>;
  /** Every URL and address rule, without fetching. */
  check(url: string | URL): Promise<CheckedTarget>;
  /** The policy (the Playwright loader applies it to each browser request). */
  readonly policy: UrlPolicy;
  readonly followRedirects: boolean;
  readonly maxRedirects: number;
  close(): Promise<void>;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const SENSITIVE_ON_CROSS_ORIGIN = ['authorization', 'cookie', 'proxy-authorization'];

class Limit extends Transform {
  private seen = 0;
  constructor(
    private readonly max: number,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.seen += chunk.length;
    if (this.seen > this.max)
      return cb(new FetchError('too_large', `The response ${this.what} is larger than ${this.max} bytes`));
    cb(null, chunk);
  }
}

function decoder(encoding: string): Transform | null {
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'identity':
    case '':
      return null;
    default:
      throw new FetchError('bad_response', `Unsupported content encoding ${encoding.slice(0, 32)}`);
  }
}

function discard(body: { on(ev: 'error', f: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function mapError(e: unknown, timedOut: boolean, aborted: boolean): Error {
  if (e instanceof UrlBlockedError || e instanceof FetchError) return e;
  if (timedOut) return new FetchError('timeout', 'The request took too long');
  if (aborted) return new FetchError('aborted', 'The request was cancelled');
  const code = (e as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT')
    return new FetchError('timeout', 'The request took too long');
  if (code.startsWith('ERR_TLS') || code.startsWith('UNABLE_TO') || code.includes('CERT'))
    return new FetchError('connect_failed', 'The TLS certificate could not be verified');
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'HPE_INVALID_CONSTANT' || code.startsWith('HPE_'))
    return new FetchError('bad_response', 'The server sent an invalid response');
  return new FetchError('connect_failed', 'The server could not be reached');
}

/**
 * Creates the client. One per purpose is enough for the process lifetime (it pools connections);
 * call `close()` when done with a short-lived one.
 */
export function createSafeFetch(config: NetConfig, opts: SafeFetchOptions = {}): SafeFetch {
  const purpose = opts.purpose ?? 'web_loader';
  const policy = new UrlPolicy(
    defaultPolicyOptions({
      allowPrivate: config.ENABLE_RAG_LOCAL_WEB_FETCH || opts.allowPrivate === true,
      offline: config.OFFLINE_MODE,
      filter: opts.useFilterList === false ? EMPTY_FILTER : filterOf(config),
      resolver: opts.resolver,
    }),
  );
  const defaults = {
    maxBytes: opts.maxBytes ?? 10 * 1024 * 1024,
    timeoutMs: opts.timeoutMs ?? 30_000,
    maxRedirects: opts.maxRedirects ?? 5,
  };
  const base =
    opts.connector ??
    verifiedBaseConnector({
      rejectUnauthorized: outboundTls(config, purpose).rejectUnauthorized,
      timeoutMs: Math.min(defaults.timeoutMs, 10_000),
    });
  const agent = new Agent({
    connect: checkedConnector(policy, base, opts.onConnect),
    headersTimeout: defaults.timeoutMs,
    bodyTimeout: defaults.timeoutMs,
    keepAliveTimeout: 4_000,
    connections: 16,
  });
  const followRedirects = config.AIOHTTP_CLIENT_ALLOW_REDIRECTS;
  const userAgent = opts.userAgent ?? 'HridaAI (+safe-fetch)';

  async function fetchUrl(input: string | URL, init: FetchInit = {}): Promise<SafeResponse> {
    const maxBytes = init.maxBytes ?? defaults.maxBytes;
    const timeoutMs = init.timeoutMs ?? defaults.timeoutMs;
    const mode = init.redirect ?? 'follow';
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new FetchError('timeout', 'The request took too long'));
    }, timeoutMs);
    const onOuterAbort = () => controller.abort(new FetchError('aborted', 'The request was cancelled'));
    init.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', onOuterAbort);
    };

    let url = policy.checkUrl(typeof input === 'string' ? input : new URL(input.href));
    let method = (init.method ?? 'GET').toUpperCase();
    let body = init.body;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
    headers['user-agent'] ??= userAgent;
    headers['accept-encoding'] = 'gzip, deflate, br';
    delete headers['host'];
    const redirects: string[] = [];

    try {
      for (;;) {
        const res = await agent.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: method as 'GET',
          headers,
          body,
          signal: controller.signal,
        });
        const location = res.headers['location'];
        if (REDIRECTS.has(res.statusCode) && typeof location === 'string' && mode !== 'manual') {
          discard(res.body);
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            throw new FetchError('bad_response', 'The server sent an invalid redirect');
          }
          if (mode === 'error' || !followRedirects)
            throw new UrlBlockedError(
              'redirect_not_allowed',
              `The server answered with a redirect (${res.statusCode}); redirects are not followed (AIOHTTP_CLIENT_ALLOW_REDIRECTS=false)`,
            );
          if (redirects.length >= defaults.maxRedirects)
            throw new FetchError('too_many_redirects', `More than ${defaults.maxRedirects} redirects`);
          next = policy.checkUrl(next); // scheme, credentials and name rules; addresses at connect
          if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
            if (method !== 'HEAD') method = 'GET';
            body = undefined;
            delete headers['content-type'];
            delete headers['content-length'];
          }
          if (next.origin !== url.origin) for (const h of SENSITIVE_ON_CROSS_ORIGIN) delete headers[h];
          redirects.push(next.href);
          url = next;
          continue;
        }

        const resHeaders = flatHeaders(res.headers);
        const declared = Number(resHeaders['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          discard(res.body);
          throw new FetchError('too_large', `The response is larger than ${maxBytes} bytes`);
        }
        const encodings = (resHeaders['content-encoding'] ?? '')
          .split(',')
          .map((e) => e.trim().toLowerCase())
          .filter((e) => e && e !== 'identity');
        if (encodings.length > 2) {
          discard(res.body);
          throw new FetchError('bad_response', 'Too many content encodings');
        }
        const decoders = encodings
          .reverse()
          .map(decoder)
          .filter((d): d is Transform => d !== null);
        const stages = [
          res.body as unknown as Readable,
          new Limit(maxBytes, 'body'),
          ...decoders,
          ...(decoders.length ? [new Limit(maxBytes, 'body (decompressed)')] : []),
        ];
        const out = (pipeline as unknown as (...s: unknown[]) => Readable)(...stages, () => undefined);
        out.once('close', cleanup);
        const finalUrl = url.href;
        const buffer = async () => {
          const chunks: Buffer[] = [];
          try {
            for await (const c of out) chunks.push(c as Buffer);
          } catch (e) {
            throw mapError(e, timedOut, controller.signal.aborted);
          } finally {
            cleanup();
          }
          return Buffer.concat(chunks);
        };
        return {
          status: res.statusCode,
          headers: resHeaders,
          url: finalUrl,
          redirects,
          body: out,
          buffer,
          text: async () => (await buffer()).toString('utf8'),
          json: async <T>() => JSON.parse((await buffer()).toString('utf8')) as T,
          dispose() {
            out.destroy();
            cleanup();
          },
        };
      }
    } catch (e) {
      cleanup();
      throw mapError(e, timedOut, controller.signal.aborted);
    }
  }

  return {
    fetch: fetchUrl,
    check: (u) => policy.check(u),
    policy,
    followRedirects,
    maxRedirects: defaults.maxRedirects,
    close: () => agent.close(),
  };
}
