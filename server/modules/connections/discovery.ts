import type { Logger } from 'pino';
import type { OpenConnection } from './service.js';
import { readCapped, UpstreamError, upstreamHeaders, type Transports } from './transport.js';

/**
 * Which models a connection serves. A connection with a `model_ids` allowlist is never asked; the
 * others are asked (`GET /models` for OpenAI-compatible servers, `GET /api/tags` for Ollama) and
 * the answer is kept for MODEL_DISCOVERY_CACHE_TTL seconds. An expired list is served while a
 * fresh one is fetched in the background; a failure is remembered for a short while so a dead
 * server is not asked on every listing.
 */

export interface DiscoveryResult {
  ids: string[];
  /** Why the list is empty or old (never an upstream body). */
  error: string | null;
  fetchedAt: number | null;
}

interface Entry {
  version: number;
  at: number;
  ids: string[];
  error: string | null;
  pending: Promise<void> | null;
}

const FAILURE_TTL_MS = 15_000;
const DISCOVERY_TIMEOUT_MS = 10_000;
const MAX_LIST_BYTES = 8 * 1024 * 1024;

export class Discovery {
  private readonly cache = new Map<string, Entry>();
  /** Bumped whenever some connection's list changes (lets callers cache what they derive from it). */
  changes = 0;

  constructor(
    private readonly transports: Transports,
    private readonly ttlMs: () => number,
    private readonly log: Logger,
  ) {}

  /** Asks the upstream now (no cache). Throws UpstreamError. */
  async fetchIds(conn: OpenConnection): Promise<string[]> {
    const path = conn.type === 'ollama' ? '/api/tags' : '/models';
    const res = await this.transports.send(conn, {
      method: 'GET',
      path,
      headers: upstreamHeaders(conn, { accept: 'application/json' }),
      headersTimeoutMs: DISCOVERY_TIMEOUT_MS,
      idleTimeoutMs: DISCOVERY_TIMEOUT_MS,
    });
    const buf = await readCapped(res.body, MAX_LIST_BYTES);
    if (res.status < 200 || res.status >= 300)
      throw new UpstreamError('bad_response', `The model server answered ${res.status} to the model list request`);
    let doc: unknown;
    try {
      doc = JSON.parse(buf.toString('utf8'));
    } catch {
      throw new UpstreamError('bad_response', 'The model server’s model list is not JSON');
    }
    const ids: string[] = [];
    if (conn.type === 'ollama') {
      for (const m of ((doc as { models?: unknown[] })?.models ?? []) as { model?: unknown; name?: unknown }[]) {
        const id = typeof m?.model === 'string' ? m.model : typeof m?.name === 'string' ? m.name : null;
        if (id) ids.push(id);
      }
    } else {
      for (const m of ((doc as { data?: unknown[] })?.data ?? []) as { id?: unknown }[])
        if (typeof m?.id === 'string') ids.push(m.id);
    }
    return [...new Set(ids.filter((id) => id.length > 0 && id.length <= 256 && !/\s/.test(id)))];
  }

  private refresh(conn: OpenConnection, entry: Entry): Promise<void> {
    entry.pending ??= this.fetchIds(conn)
      .then((ids) => {
        if (ids.length !== entry.ids.length || ids.some((id, i) => id !== entry.ids[i])) this.changes += 1;
        entry.ids = ids;
        entry.error = null;
        entry.at = Date.now();
      })
      .catch((e: unknown) => {
        const msg = e instanceof UpstreamError ? e.message : 'The model list could not be read';
        this.log.warn({ connection_id: conn.id, err: msg }, 'Model discovery failed');
        entry.error = msg;
        // Keep the last good list; ask again after a short pause.
        entry.at = Date.now() - Math.max(0, this.ttlMs() - FAILURE_TTL_MS);
      })
      .finally(() => {
        entry.pending = null;
      });
    return entry.pending;
  }

  /**
   * The model ids of a connection. `refresh` forces a new request; otherwise a fresh cached list is
   * returned at once, an expired one is returned while it refreshes, and a missing one is awaited.
   */
  async ids(conn: OpenConnection, opts: { refresh?: boolean } = {}): Promise<DiscoveryResult> {
    if (conn.modelIds.length) return { ids: conn.modelIds, error: null, fetchedAt: null };
    let entry = this.cache.get(conn.id);
    if (!entry || entry.version !== conn.updatedAt) {
      entry = { version: conn.updatedAt, at: 0, ids: [], error: null, pending: null };
      this.cache.set(conn.id, entry);
      this.changes += 1;
    }
    const fresh = entry.at > 0 && Date.now() - entry.at < this.ttlMs();
    if (opts.refresh || entry.at === 0) await this.refresh(conn, entry);
    else if (!fresh) void this.refresh(conn, entry);
    return { ids: entry.ids, error: entry.error, fetchedAt: entry.at || null };
  }

  /** The cached ids, without asking (null: never discovered). */
  peek(conn: OpenConnection): string[] | null {
    if (conn.modelIds.length) return conn.modelIds;
    const e = this.cache.get(conn.id);
    return e && e.version === conn.updatedAt && e.at > 0 ? e.ids : null;
  }

  forget(id: string): void {
    this.cache.delete(id);
    this.changes += 1;
  }
}
