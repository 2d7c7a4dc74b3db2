import { randomUUID } from 'node:crypto';
import { CompiledQuery } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../../platform/db/index.js';
import type { GatewayUsageTable } from './tables.js';

/**
 * The usage ledger, written off the response path: rows are queued when a request ends (completed,
 * failed or aborted by the client) and inserted in batches a moment later. `flush()` writes what is
 * queued (the usage report and budget seeding call it; so does shutdown).
 *
 * The hot path keeps this cheap: rows go in batches of a few fixed sizes whose multi-row INSERT text
 * is built once and reused (no query building, and SQLite reuses the prepared statement), and row
 * ids are time-ordered (UUID version 7 layout), so inserts append to the primary-key index instead
 * of landing on random pages of it.
 */
export type UsageRow = Omit<GatewayUsageTable, 'id'>;

const FLUSH_AFTER_MS = 100;
const BATCH = 200;

const COLUMNS = [
  'id',
  'created_at',
  'request_id',
  'route',
  'user_id',
  'actor_id',
  'key_id',
  'model_id',
  'base_model_id',
  'connection_id',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'usage_source',
  'status',
  'http_status',
  'stream',
  'duration_ms',
  'ttft_ms',
] as const satisfies readonly (keyof GatewayUsageTable)[];

let idMs = -1;
let idPrefix = '';
/** A UUID whose first 48 bits are the time in ms (RFC 9562 version 7 layout) and the rest random. */
export function timeOrderedId(now = Date.now()): string {
  if (now !== idMs) {
    const ts = now.toString(16).padStart(12, '0');
    idMs = now;
    idPrefix = `${ts.slice(0, 8)}-${ts.slice(8, 12)}-7`;
  }
  return idPrefix + randomUUID().slice(15);
}

/** A row as the INSERT's parameters, in COLUMNS order (built with plain property reads). */
function values(id: string, r: UsageRow): unknown[] {
  return [
    id,
    r.created_at,
    r.request_id,
    r.route,
    r.user_id,
    r.actor_id,
    r.key_id,
    r.model_id,
    r.base_model_id,
    r.connection_id,
    r.prompt_tokens,
    r.completion_tokens,
    r.total_tokens,
    r.usage_source,
    r.status,
    r.http_status,
    r.stream,
    r.duration_ms,
    r.ttft_ms,
  ];
}

export class UsageRecorder {
  private queue: unknown[][] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private readonly statements = new Map<number, string>();

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly dialect: 'sqlite' | 'postgresql',
  ) {}

  record(row: UsageRow): void {
    this.queue.push(values(timeOrderedId(row.created_at), row));
    if (this.queue.length >= BATCH) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_AFTER_MS);
      this.timer.unref();
    }
  }

  private statement(rows: number): string {
    let s = this.statements.get(rows);
    if (s) return s;
    const n = COLUMNS.length;
    const tuples: string[] = [];
    for (let r = 0; r < rows; r++) {
      const ph: string[] = [];
      for (let c = 1; c <= n; c++) ph.push(this.dialect === 'postgresql' ? `$${r * n + c}` : '?');
      tuples.push(`(${ph.join(', ')})`);
    }
    s = `insert into "gateway_usage" (${COLUMNS.map((c) => `"${c}"`).join(', ')}) values ${tuples.join(', ')}`;
    if (this.statements.size > 16) this.statements.clear();
    this.statements.set(rows, s);
    return s;
  }

  private async insert(part: unknown[][]): Promise<void> {
    const params = new Array<unknown>(part.length * COLUMNS.length);
    let k = 0;
    for (const row of part) for (let c = 0; c < row.length; c++) params[k++] = row[c];
    await this.db.executeQuery(CompiledQuery.raw(this.statement(part.length), params));
  }

  /** Writes everything queued so far (and waits for writes already under way). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const rows = this.queue;
    this.queue = [];
    this.writing = this.writing.then(async () => {
      for (let i = 0; i < rows.length;) {
        // Batches of BATCH rows, the rest in powers of two: at most nine distinct statements, so
        // SQLite's prepared statements are reused (a new row count would mean a new statement).
        const left = rows.length - i;
        let size = BATCH;
        if (left < BATCH) for (size = 128; size > left; size >>= 1);
        const part = rows.slice(i, i + size);
        i += size;
        try {
          await this.insert(part);
        } catch (e) {
          this.log.error({ err: (e as Error).message, rows: part.length }, 'Could not write gateway usage');
        }
      }
    });
    return this.writing;
  }
}
