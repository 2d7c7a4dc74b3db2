import { mkdirSync } from 'node:fs';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AuditMetrics } from './metrics.js';

/** Where audit entries go: log lines to the file (with rotation) and standard output; rows to the database. */
export interface Sink<T> {
  readonly name: string;
  write(items: T[]): Promise<void>;
  close(): Promise<void>;
}
export type LineSink = Sink<string>;

/**
 * JSON Lines file, mode 0600, rotated before it would exceed `maxBytes`: `<path>` → `<path>.1` →
 * … → `<path>.<keep>`, the oldest deleted. One writer per file: give every instance its own path.
 */
export class FileSink implements LineSink {
  readonly name = 'file';
  private fh: FileHandle | null = null;
  private size = 0;

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {}

  private async openFile(): Promise<FileHandle> {
    if (this.fh) return this.fh;
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const fh = await open(this.file, 'a', 0o600);
    this.size = (await fh.stat()).size;
    this.fh = fh;
    return fh;
  }

  private async rotate(): Promise<void> {
    if (this.fh) {
      const fh = this.fh;
      this.fh = null;
      await fh.close();
    }
    await unlink(`${this.file}.${this.keep}`).catch(ignoreMissing);
    for (let i = this.keep - 1; i >= 1; i--)
      await rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch(ignoreMissing);
    await rename(this.file, `${this.file}.1`).catch(ignoreMissing);
    this.size = 0;
  }

  async write(lines: string[]): Promise<void> {
    try {
      await this.writeLines(lines);
    } catch (e) {
      // Reopen on the next attempt (the file may have been moved or the disk freed).
      await this.close().catch(() => undefined);
      throw e;
    }
  }

  private async writeLines(lines: string[]): Promise<void> {
    let chunk: Buffer[] = [];
    let chunkBytes = 0;
    const flushChunk = async () => {
      if (!chunkBytes) return;
      const fh = await this.openFile();
      const buf = Buffer.concat(chunk, chunkBytes);
      let off = 0;
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
      this.size += buf.length;
      chunk = [];
      chunkBytes = 0;
    };
    await this.openFile();
    for (const line of lines) {
      const b = Buffer.from(line + '\n', 'utf8');
      if (this.size + chunkBytes + b.length > this.maxBytes && this.size + chunkBytes > 0) {
        await flushChunk();
        await this.rotate();
        await this.openFile();
      }
      chunk.push(b);
      chunkBytes += b.length;
    }
    await flushChunk();
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close();
  }

  /** Current size, for tests and `doctor`. */
  async currentSize(): Promise<number> {
    return stat(this.file).then(
      (s) => s.size,
      () => 0,
    );
  }
}

function ignoreMissing(e: NodeJS.ErrnoException): void {
  if (e.code !== 'ENOENT') throw e;
}

/** One JSON object per line on standard output (or any writable stream), respecting backpressure. */
export class StreamSink implements LineSink {
  readonly name = 'stdout';
  constructor(private readonly stream: NodeJS.WritableStream) {}

  write(lines: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      // Resolves once the data is handed over and, under backpressure, once the stream drained.
      let written = false;
      let drained = true;
      const settle = () => written && drained && resolve();
      const onError = (e: Error) => reject(e);
      this.stream.once('error', onError);
      const ok = this.stream.write(lines.join('\n') + '\n', (err) => {
        this.stream.removeListener('error', onError);
        if (err) return reject(err);
        written = true;
        settle();
      });
      if (!ok) {
        drained = false;
        this.stream.once('drain', () => {
          drained = true;
          settle();
        });
      }
    });
  }

  async close(): Promise<void> {}
}

const MAX_PENDING = 100_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 30_000;
const ERROR_LOG_EVERY_MS = 30_000;

/**
 * Feeds one sink off the response path: lines queue in memory and one write runs at a time.
 * A failing write is logged and counted, its lines stay queued and are retried with backoff;
 * only when a sink stays behind by more than MAX_PENDING lines are the oldest dropped — counted
 * and logged, never silently.
 */
export class SinkWriter<T = string> {
  private queue: T[] = [];
  private running: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoff = RETRY_MIN_MS;
  private lastErrorLog = 0;
  private suppressedErrors = 0;
  errors = 0;
  dropped = 0;
  written = 0;
  closed = false;

  constructor(
    readonly sink: Sink<T>,
    private readonly log: Logger,
    private readonly metrics: AuditMetrics,
    private readonly batchSize = 1000,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  push(items: T[]): void {
    if (this.closed) return;
    for (const l of items) this.queue.push(l);
    if (this.queue.length > MAX_PENDING) {
      const n = this.queue.length - MAX_PENDING;
      this.queue.splice(0, n);
      this.dropped += n;
      this.metrics.dropped.inc({ sink: this.sink.name }, n);
      this.log.error(
        { sink: this.sink.name, dropped: n, total_dropped: this.dropped },
        'Audit sink is failing and fell too far behind: oldest audit entries dropped',
      );
    }
    this.metrics.pending.set({ sink: this.sink.name }, this.queue.length);
    if (!this.retryTimer) this.kick();
  }

  private kick(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = this.drain().finally(() => {
      this.running = null;
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.slice(0, this.batchSize);
      try {
        await this.sink.write(batch);
      } catch (e) {
        this.errors += 1;
        this.metrics.errors.inc({ sink: this.sink.name });
        const now = Date.now();
        if (now - this.lastErrorLog >= ERROR_LOG_EVERY_MS) {
          this.log.error(
            {
              sink: this.sink.name,
              err: (e as Error).message,
              pending: this.queue.length,
              failures_since_last_report: this.suppressedErrors,
            },
            'Audit sink write failed; entries kept and retried',
          );
          this.lastErrorLog = now;
          this.suppressedErrors = 0;
        } else this.suppressedErrors += 1;
        if (!this.closed) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.kick();
          }, this.backoff);
          this.retryTimer.unref();
          this.backoff = Math.min(this.backoff * 2, RETRY_MAX_MS);
        }
        return;
      }
      this.queue.splice(0, batch.length);
      this.written += batch.length;
      this.backoff = RETRY_MIN_MS;
      this.metrics.written.inc({ sink: this.sink.name }, batch.length);
      this.metrics.pending.set({ sink: this.sink.name }, this.queue.length);
    }
  }

  /** Waits until everything queued so far is written (or the sink failed once). */
  async flush(): Promise<void> {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.kick();
    while (this.running) await this.running;
  }

  /** Flushes (waiting at most `deadlineMs` for a stuck sink), then stops; what is left is reported lost. */
  async close(deadlineMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flush(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.queue.length) {
      this.dropped += this.queue.length;
      this.metrics.dropped.inc({ sink: this.sink.name }, this.queue.length);
      this.log.error(
        { sink: this.sink.name, dropped: this.queue.length },
        'Audit sink still failing at shutdown: queued audit entries lost',
      );
      this.queue = [];
    }
    await this.sink.close().catch(() => undefined);
  }
}
