import type { Config } from '../../config/index.js';
import { createSafeFetch, UrlBlockedError, type Resolver, type SafeFetch } from '../../platform/net/index.js';

/**
 * Every request to an identity provider (discovery, JWKS, token, userinfo, GitHub API) goes
 * through the outbound client with this rule: an admin-configured provider is a trusted
 * destination — private and loopback addresses are allowed (an in-house Keycloak is normal) and
 * WEB_FETCH_FILTER_LIST does not apply — but cloud metadata endpoints stay blocked, OFFLINE_MODE
 * still refuses public addresses, the socket goes to exactly the address that was checked, and a
 * 3xx answer is an error: no redirect is ever followed, so a provider (or whoever controls its
 * DNS) cannot bounce HridaAI to another host. Certificate verification follows REQUESTS_VERIFY.
 */
export interface IdpFetch {
  /** A WHATWG-fetch-compatible function for openid-client (`customFetch`) and jose. */
  fetch(
    url: string,
    init?: { method?: string; headers?: Record<string, string>; body?: unknown; signal?: AbortSignal },
  ): Promise<Response>;
  close(): Promise<void>;
}

function bodyText(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  throw new Error('unsupported request body for an identity provider request');
}

export class IdpFetchError extends Error {
  constructor(
    message: string,
    readonly blocked: boolean,
  ) {
    super(message);
    this.name = 'IdpFetchError';
  }
}

export function createIdpFetch(config: Config, opts: { resolver?: Resolver; timeoutMs?: number } = {}): IdpFetch {
  const sf: SafeFetch = createSafeFetch(config, {
    purpose: 'general',
    allowPrivate: true,
    useFilterList: false,
    resolver: opts.resolver,
    maxBytes: 1024 * 1024,
    timeoutMs: opts.timeoutMs ?? 10_000,
    userAgent: 'HridaAI',
  });
  return {
    async fetch(url, init = {}) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
      let res;
      try {
        res = await sf.fetch(url, {
          method: init.method ?? 'GET',
          headers,
          body: bodyText(init.body),
          redirect: 'error',
          signal: init.signal,
        });
      } catch (e) {
        throw new IdpFetchError(
          `identity provider request to ${new URL(url).origin} failed: ${(e as Error).message}`,
          e instanceof UrlBlockedError,
        );
      }
      const buf = await res.buffer();
      const nullBody = res.status === 204 || res.status === 304 || buf.length === 0;
      const out = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (k === 'content-encoding' || k === 'content-length' || k === 'transfer-encoding') continue;
        out.set(k, v);
      }
      return new Response(nullBody ? null : new Uint8Array(buf), { status: res.status, headers: out });
    },
    close: () => sf.close(),
  };
}
