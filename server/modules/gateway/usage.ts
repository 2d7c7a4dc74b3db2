import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../../platform/db/index.js';
import type { GatewayUsageTable } from './tables.js';

/**
 * The usage ledger, written off the response path: rows are queued when a request ends (completed,
 * failed or aborted by the client) and inserted in batches a moment later. `flush()` writes what is
 * queued (the usage report and budget seeding call it; so does shutdown).
 */
export type UsageRow = Omit<GatewayUsageTable, 'id'>;

const FLUSH_AFTER_MS = 100;
const BATCH = 200;

export class UsageRecorder {
  private queue: GatewayUsageTable[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  record(row: UsageRow): void {
    this.queue.push({ id: randomUUID(), ...row });
    if (this.queue.length >= BATCH) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_AFTER_MS);
      this.timer.unref();
    }
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
      for (let i = 0; i < rows.length; i += BATCH) {
        const part = rows.slice(i, i + BATCH);
        try {
          await this.db.insertInto('gateway_usage').values(part).execute();
        } catch (e) {
          this.log.error({ err: (e as Error).message, rows: part.length }, 'Could not write gateway usage');
        }
      }
    });
    return this.writing;
  }
}
