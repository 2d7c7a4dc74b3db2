/**
 * The one way the UI talks to the server. The session lives only in the HttpOnly cookie that the
 * server sets: nothing here reads, stores or forwards a token. Requests are same-origin with
 * credentials, so the browser sends the Origin header the server's CSRF check expects.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type AuthLostHandler = (err: ApiError) => void;
let authLost: AuthLostHandler | null = null;

/** Called when a request fails with 401 (session ended, revoked or expired). */
export function onAuthLost(fn: AuthLostHandler | null): void {
  authLost = fn;
}

/** For requests made outside `api()` (the chat stream). */
export function reportAuthLost(err: ApiError): void {
  authLost?.(err);
}

export interface ApiOptions {
  signal?: AbortSignal;
  /** Do not report a 401 to the app (the caller handles it, e.g. the sign-in form). */
  quietAuth?: boolean;
}

interface ErrorEnvelope {
  error?: { code?: string | null; type?: string; message?: string; details?: unknown };
}

export function errorFromBody(status: number, statusText: string, body: unknown): ApiError {
  const e = (body as ErrorEnvelope | undefined)?.error;
  const code = e?.code ?? e?.type ?? `http_${status}`;
  const message = e?.message ?? (statusText || `Request failed (${status})`);
  return new ApiError(status, String(code), message, e?.details);
}

export async function api<T>(method: string, url: string, body?: unknown, opts: ApiOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let payload: string | undefined;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: payload,
      credentials: 'same-origin',
      cache: 'no-store',
      signal: opts.signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection and try again.');
  }
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const err = errorFromBody(res.status, res.statusText, data);
    if (res.status === 401 && !opts.quietAuth) authLost?.(err);
    throw err;
  }
  return data as T;
}

export const get = <T>(url: string, opts?: ApiOptions) => api<T>('GET', url, undefined, opts);
export const post = <T>(url: string, body?: unknown, opts?: ApiOptions) => api<T>('POST', url, body ?? {}, opts);
export const patch = <T>(url: string, body: unknown, opts?: ApiOptions) => api<T>('PATCH', url, body, opts);
export const del = <T>(url: string, opts?: ApiOptions) => api<T>('DELETE', url, undefined, opts);

/** A message fit for the user, whatever was thrown. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return 'Something went wrong';
}
