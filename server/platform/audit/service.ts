import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config, DatabaseKind } from '../../config/index.js';
import type { Db, Trx } from '../db/index.js';
import { appendEntries, type ChainFields } from './chain.js';
import type { AuditService, AuthEvent, DomainEvent } from './index.js';
import { cutUtf8, parseForm, redactHeaders, redactJsonText, redactToJson, redactUrl } from './redact.js';
import { runRetention, type RetentionResult } from './retention.js';
import { createAuditMetrics } from './metrics.js';
import { FileSink, SinkWriter, StreamSink, type Sink } from './sinks.js';
import './tables.js';

export type AuditLevel = Config['AUDIT_LOG_LEVEL'];

/** The JSON columns of the trail are capped; a longer snapshot keeps a preview and says so. */
const MAX_SNAPSHOT_BYTES = 64 * 1024;
/** JSON bodies held as a Buffer larger than this are not decoded for the log (their size is noted). */
const MAX_BUFFER_BYTES = 4 * 1024 * 1024;
const MAINTENANCE_FIRST_MS = 30_000;
const MAINTENANCE_EVERY_MS = 60 * 60_000;

/** Paths that are always audited: password sign-in/out/up, LDAP and the SSO flows. */
const ALWAYS_AUDITED = /^\/(?:api\/v1\/auths\/(?:signin|signout|signup|ldap)|oauth\/|api\/v1\/auths\/oauth)/;
/** Infrastructure and static files: never part of the request audit log (unless authentication failed). */
const NOT_API = new Set(['/health', '/metrics', '/openapi.json']);

/** Builds the matcher for AUDIT_INCLUDED_PATHS / AUDIT_EXCLUDED_PATHS (see docs/configuration.md). */
export function pathMatcher(prefixes: string[]): (path: string) => boolean {
  if (prefixes.length === 0) return () => false;
  const esc = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const api = prefixes.filter((p) => !p.startsWith('api/')).map(esc);
  const root = prefixes.filter((p) => p.startsWith('api/')).map(esc);
  const alts = [...(api.length ? [`api(?:/v1)?/(?:${api.join('|')})`] : []), ...root];
  const re = new RegExp(`^/(?:${alts.join('|')})(?![a-z0-9_])`, 'i');
  return (p) => re.test(p);
}

interface Captured {
  t: number;
  requestId: string;
  method: string;
  url: string;
  route: string | null;
  ip: string | null;
  userAgent: string | null;
  status: number;
  ms: number;
  user: { id: string; email: string | null; role: string | null } | null;
  actorId: string | null;
  authKind: string | null;
  keyId: string | null;
  headers?: FastifyRequest['headers'];
  contentType?: string;
  body?: unknown;
  payload?: unknown;
  resContentType?: string;
}

interface Annotation {
  userId: string | null;
  email: string | null;
}

export interface AuditPipelineOptions {
  /** Stream for ENABLE_AUDIT_STDOUT (default: process.stdout). */
  stdout?: NodeJS.WritableStream;
  /** Run retention on a timer (the server does; CLI tools don't). */
  maintenance?: boolean;
  /** Metrics registry (the app's); prom-client's default registry otherwise. */
  registry?: Registry;
}

function clip(s: string | null | undefined, n: number): string | null {
  if (s === null || s === undefined) return null;
  return s.length > n ? s.slice(0, n) : s;
}

/** Masked JSON text for a snapshot column, or null. */
export function snapshot(v: unknown): string | null {
  if (v === undefined) return null;
  const { text, truncated } = redactToJson(v, MAX_SNAPSHOT_BYTES);
  if (!truncated) return text;
  return JSON.stringify({ _truncated: true, preview: cutUtf8(text, 2048) });
}

export function domainFields(ev: DomainEvent, now = Date.now()): ChainFields {
  return {
    created_at: now,
    action: clip(ev.action, 128)!,
    actor_id: clip(ev.actorId, 64),
    subject_id: clip(ev.subjectId ?? null, 64),
    resource_type: clip(ev.resourceType, 64)!,
    resource_id: clip(ev.resourceId ?? null, 256),
    result: ev.result ?? 'success',
    ip: clip(ev.ip ?? null, 64),
    request_id: clip(ev.requestId ?? null, 64),
    before: snapshot(ev.before),
    after: snapshot(ev.after),
    details: snapshot(ev.details),
  };
}

export function authFields(ev: AuthEvent, now = Date.now()): ChainFields {
  const details: Record<string, unknown> = { method: ev.method };
  if (ev.email) details.email = clip(ev.email, 320);
  if (ev.reason) details.reason = clip(ev.reason, 200);
  if (ev.userAgent) details.user_agent = clip(ev.userAgent, 512);
  return {
    created_at: now,
    action: clip(ev.action, 128)!,
    // A failed attempt has no authenticated actor; the account it targeted is the subject.
    actor_id: ev.result === 'success' ? clip(ev.userId ?? null, 64) : null,
    subject_id: clip(ev.userId ?? null, 64),
    resource_type: 'auth',
    resource_id: clip(ev.userId ?? null, 256),
    result: ev.result,
    ip: clip(ev.ip ?? null, 64),
    request_id: clip(ev.requestId ?? null, 64),
    before: null,
    after: null,
    details: snapshot(details),
  };
}

/** Writes queued authentication events to the trail, many per transaction. */
class TrailSink implements Sink<ChainFields> {
  readonly name = 'database';
  constructor(
    private readonly db: Db,
    private readonly kind: DatabaseKind,
  ) {}
  async write(items: ChainFields[]): Promise<void> {
    await this.db.transaction().execute((trx) => appendEntries(trx, this.kind, items));
  }
  async close(): Promise<void> {}
}

/**
 * The audit pipeline: the request audit log (levels, path filters, redaction, file and stdout
 * sinks — all off the response path) and the tamper-evident trail (domain events in the caller's
 * transaction, authentication events queued, retention by sealed segments).
 */
export class AuditPipeline implements AuditService {
  readonly level: AuditLevel;
  readonly sinks: SinkWriter<string>[] = [];
  readonly trail: SinkWriter<ChainFields>;
  readonly filePath: string;
  private captured: Captured[] = [];
  private scheduled = false;
  private readonly payloads = new WeakMap<FastifyRequest, unknown>();
  private readonly annotations = new Map<string, Annotation>();
  private readonly included: (p: string) => boolean;
  private readonly excluded: (p: string) => boolean;
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private maintenanceRun: Promise<unknown> | null = null;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly db: Db,
    private readonly kind: DatabaseKind,
    private readonly log: Logger,
    private readonly opts: AuditPipelineOptions = {},
  ) {
    this.level = config.AUDIT_LOG_LEVEL;
    this.filePath = path.resolve(config.dataDir, config.AUDIT_LOGS_FILE_PATH ?? 'audit.log');
    this.included = pathMatcher(config.AUDIT_INCLUDED_PATHS);
    this.excluded = pathMatcher(config.AUDIT_EXCLUDED_PATHS);
    const metrics = createAuditMetrics(opts.registry);
    if (this.level !== 'NONE') {
      if (config.ENABLE_AUDIT_LOGS_FILE)
        this.sinks.push(
          new SinkWriter(
            new FileSink(this.filePath, config.AUDIT_LOG_FILE_ROTATION_SIZE, config.AUDIT_LOG_FILE_ROTATION_KEEP),
            log,
            metrics,
          ),
        );
      if (config.ENABLE_AUDIT_STDOUT)
        this.sinks.push(new SinkWriter(new StreamSink(opts.stdout ?? process.stdout), log, metrics));
    }
    this.trail = new SinkWriter(new TrailSink(db, kind), log, metrics, 500);
  }

  // ---- the trail

  async record(db: Db | Trx, event: DomainEvent): Promise<void> {
    const fields = domainFields(event);
    if (db.isTransaction) await appendEntries(db as Trx, this.kind, [fields]);
    else await db.transaction().execute((trx) => appendEntries(trx, this.kind, [fields]));
  }

  async recordAuth(trx: Trx, event: AuthEvent): Promise<void> {
    await appendEntries(trx, this.kind, [authFields(event)]);
    this.annotate(event);
  }

  auth(event: AuthEvent): void {
    try {
      this.trail.push([authFields(event)]);
      this.annotate(event);
      if (this.sinks.length) this.emit(this.authEntry(event));
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'Could not queue an authentication audit event');
    }
  }

  /** Remembers who the request was about, so that its audit log line names the user. */
  private annotate(event: AuthEvent): void {
    if (this.level === 'NONE' || !event.requestId) return;
    if (this.annotations.size >= 10_000) this.annotations.delete(this.annotations.keys().next().value!);
    const prev = this.annotations.get(event.requestId);
    // Only a success names the request's user; a failed attempt stays anonymous in the request line.
    const ok = event.result === 'success' && !!event.userId;
    this.annotations.set(event.requestId, {
      userId: ok ? event.userId! : (prev?.userId ?? null),
      email: ok ? (event.email ?? null) : (prev?.email ?? null),
    });
  }

  private authEntry(ev: AuthEvent): Record<string, unknown> {
    return {
      log_type: 'audit',
      event: 'auth',
      id: randomUUID(),
      timestamp: new Date().toISOString(),
      audit_level: this.level,
      request_id: ev.requestId ?? null,
      action: ev.action,
      result: ev.result,
      method: ev.method,
      user_id: ev.userId ?? null,
      email: ev.email ? clip(ev.email, 320) : null,
      reason: ev.reason ?? null,
      source_ip: ev.ip ?? null,
      user_agent: ev.userAgent ?? null,
    };
  }

  private emit(entry: Record<string, unknown>): void {
    const line = JSON.stringify(entry);
    for (const s of this.sinks) s.push([line]);
  }

  // ---- the request audit log

  /** Adds the request hooks (nothing at NONE) and the shutdown drain. */
  install(app: FastifyInstance): void {
    app.addHook('onClose', async () => this.close());
    if (this.opts.maintenance && this.config.AUDIT_RETENTION_DAYS !== null) {
      const run = () => {
        this.maintenanceRun ??= this.maintain()
          .catch((e: Error) => this.log.error({ err: e.message }, 'Audit retention failed'))
          .finally(() => {
            this.maintenanceRun = null;
          });
      };
      this.maintenanceTimer = setTimeout(run, MAINTENANCE_FIRST_MS);
      this.maintenanceTimer.unref();
      const every = setInterval(run, MAINTENANCE_EVERY_MS);
      every.unref();
      app.addHook('onClose', async () => clearInterval(every));
    }
    if (this.level === 'NONE') return;
    if (this.level === 'REQUEST_RESPONSE')
      app.addHook('onSend', (req, _reply, payload, done) => {
        this.payloads.set(req, payload);
        done(null, payload);
      });
    app.addHook('onResponse', (req, reply, done) => {
      try {
        this.capture(req, reply);
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'Could not capture a request for the audit log');
      }
      done();
    });
  }

  /** Whether the filters select this request (authentication requests bypass them). */
  selects(req: FastifyRequest): boolean {
    // The web UI's catch-all (`/*`) also answers unknown API paths: judge those by their path.
    const matched = req.routeOptions?.url ?? null;
    const route = matched === '/*' ? null : matched;
    if (route && (NOT_API.has(route) || route.startsWith('/docs'))) return false;
    let p = route ?? req.url.split('?')[0]!;
    if (!route) {
      try {
        p = decodeURIComponent(p);
      } catch {
        /* keep it encoded */
      }
      if (!p.toLowerCase().startsWith('/api/')) return false;
    }
    if (this.config.AUDIT_INCLUDED_PATHS.length) return this.included(p);
    return !this.excluded(p);
  }

  private capture(req: FastifyRequest, reply: FastifyReply): void {
    if (req.method === 'OPTIONS' || req.method === 'HEAD') return;
    const ann = this.annotations.get(req.id);
    if (ann) this.annotations.delete(req.id);
    const status = reply.statusCode;
    const rawPath = req.url.split('?')[0]!.toLowerCase();
    const route = req.routeOptions?.url ?? null;
    const forced =
      ann !== undefined || status === 401 || ALWAYS_AUDITED.test(rawPath) || (!!route && ALWAYS_AUDITED.test(route));
    if (!forced && !this.selects(req)) return;
    const auth = req.auth;
    const ua = req.headers['user-agent'];
    const c: Captured = {
      t: Date.now(),
      requestId: req.id,
      method: req.method,
      url: req.url,
      route,
      ip: req.ip ?? null,
      userAgent: typeof ua === 'string' ? ua : null,
      status,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      user: auth ? { id: auth.user.id, email: auth.user.email, role: auth.user.role } : null,
      actorId: auth ? auth.actorId : null,
      authKind: auth ? auth.kind : null,
      keyId: auth?.keyId ?? null,
    };
    if (!auth && ann?.userId) c.user = { id: ann.userId, email: ann.email, role: null };
    if (this.level !== 'METADATA') {
      c.headers = req.headers;
      c.contentType = String(req.headers['content-type'] ?? '');
      c.body = req.body;
    }
    if (this.level === 'REQUEST_RESPONSE') {
      c.payload = this.payloads.get(req);
      const ct = reply.getHeader('content-type');
      c.resContentType = typeof ct === 'string' ? ct : '';
    }
    this.captured.push(c);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drainCaptured());
    }
  }

  private drainCaptured(): void {
    this.scheduled = false;
    const batch = this.captured;
    this.captured = [];
    if (!batch.length) return;
    const lines: string[] = [];
    for (const c of batch) {
      try {
        lines.push(JSON.stringify(this.entry(c)));
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'Could not build an audit log entry');
      }
    }
    for (const s of this.sinks) s.push(lines);
  }

  private bodyText(body: unknown, contentType: string): { text: string | null; truncated: boolean } {
    const max = this.config.MAX_BODY_LOG_SIZE;
    if (body === undefined || body === null || body === '') return { text: null, truncated: false };
    if (typeof body === 'string') {
      if (/json/i.test(contentType))
        return (
          redactJsonText(body, max) ?? {
            text: `[unparseable JSON body omitted: ${Buffer.byteLength(body)} bytes]`,
            truncated: false,
          }
        );
      if (/x-www-form-urlencoded/i.test(contentType)) return redactToJson(parseForm(body), max);
      return {
        text: `[${contentType.split(';')[0] || 'non-JSON'} body omitted: ${Buffer.byteLength(body)} bytes]`,
        truncated: false,
      };
    }
    if (Buffer.isBuffer(body)) {
      if (/json/i.test(contentType) && body.length <= MAX_BUFFER_BYTES)
        return this.bodyText(body.toString('utf8'), contentType);
      return {
        text: `[${contentType.split(';')[0] || 'binary'} body omitted: ${body.length} bytes]`,
        truncated: false,
      };
    }
    if (typeof body === 'object' && typeof (body as { pipe?: unknown }).pipe === 'function')
      return { text: '[streamed body omitted]', truncated: false };
    return redactToJson(body, max);
  }

  /** The audit log entry: the fields of each level, exactly (see docs/security.md). */
  private entry(c: Captured): Record<string, unknown> {
    const e: Record<string, unknown> = {
      log_type: 'audit',
      event: 'request',
      id: randomUUID(),
      timestamp: new Date(c.t).toISOString(),
      audit_level: this.level,
      request_id: c.requestId,
      user: c.user,
      actor_id: c.actorId,
      auth_kind: c.authKind,
      key_id: c.keyId,
      source_ip: c.ip,
      user_agent: c.userAgent,
      method: c.method,
      url: redactUrl(c.url),
      route: c.route,
      status_code: c.status,
      duration_ms: c.ms,
    };
    if (this.level === 'METADATA') return e;
    e.request_headers = redactHeaders(c.headers ?? {});
    const req = this.bodyText(c.body, c.contentType ?? '');
    e.request_body = req.text;
    e.request_body_truncated = req.truncated;
    if (this.level === 'REQUEST') return e;
    const res = this.bodyText(c.payload, c.resContentType || 'application/json');
    e.response_body = res.text;
    e.response_body_truncated = res.truncated;
    return e;
  }

  // ---- retention, flushing, shutdown

  /** Seals finished days into segments and prunes those older than AUDIT_RETENTION_DAYS. */
  async maintain(now = Date.now()): Promise<RetentionResult> {
    const r = await runRetention(this.db, this.kind, this.config.AUDIT_RETENTION_DAYS, now);
    for (const cp of r.sealed) {
      this.log.info(
        { first_seq: cp.first_seq, last_seq: cp.last_seq, hash: cp.last_hash },
        'Audit trail segment sealed (keep this hash outside the database to anchor the chain)',
      );
      if (this.sinks.length)
        this.emit({
          log_type: 'audit',
          event: 'checkpoint',
          id: randomUUID(),
          timestamp: new Date().toISOString(),
          first_seq: cp.first_seq,
          last_seq: cp.last_seq,
          hash: cp.last_hash,
        });
    }
    for (const p of r.pruned)
      this.log.info({ first_seq: p.first_seq, last_seq: p.last_seq, rows: p.rows }, 'Audit trail segment pruned');
    return r;
  }

  async flush(): Promise<void> {
    if (this.scheduled) this.drainCaptured();
    await this.trail.flush();
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    if (this.maintenanceRun) await this.maintenanceRun;
    if (this.scheduled) this.drainCaptured();
    await this.trail.close();
    await Promise.all(this.sinks.map((s) => s.close()));
  }

  /** Counters for tests and diagnostics. */
  stats() {
    return {
      trail: { pending: this.trail.pending, errors: this.trail.errors, dropped: this.trail.dropped },
      sinks: Object.fromEntries(
        this.sinks.map((s) => [
          s.sink.name,
          { pending: s.pending, errors: s.errors, dropped: s.dropped, written: s.written },
        ]),
      ),
    };
  }
}

export function createAuditService(
  config: Config,
  db: Db,
  kind: DatabaseKind,
  log: Logger,
  opts: AuditPipelineOptions = {},
): AuditPipeline {
  return new AuditPipeline(config, db, kind, log, { maintenance: true, ...opts });
}
