import { createHash, randomBytes } from 'node:crypto';
import { constants, lstatSync, mkdirSync, type ReadStream } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../platform/http/errors.js';
import { SNIFF_BYTES } from './sniff.js';

const NAME = /^[a-f0-9]{32}$/;
const TMP = /^tmp-[a-f0-9]{32}$/;
const WRITE_FLAGS = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

export interface Received {
  tmpName: string;
  size: number;
  sha256: string;
  head: Buffer;
}

/** A readable stream that reports busboy's size cut (`truncated`). */
type Source = AsyncIterable<Buffer> & { truncated?: boolean };

/**
 * Upload storage: DATA_DIR/uploads (mode 0700), files named by 128 random bits (mode 0600),
 * created with O_EXCL|O_NOFOLLOW and opened with O_NOFOLLOW, so neither a name from a client nor a
 * planted symlink can point the server at another path.
 */
export class FileStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'uploads');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (lstatSync(this.dir).isSymbolicLink())
      throw new Error(`${this.dir} is a symbolic link; refusing to store uploads there`);
  }

  private pathOf(name: string, pattern: RegExp): string {
    if (!pattern.test(name)) throw new AppError('internal_error', 'Invalid storage name');
    return path.join(this.dir, name);
  }

  /**
   * Streams a source to a temporary file. Memory holds one chunk and the first bytes (for
   * sniffing). Beyond `maxBytes` the partial file is removed and `file_too_large` thrown at once.
   */
  async receive(source: Source, maxBytes: number | null): Promise<Received> {
    const tmpName = `tmp-${randomBytes(16).toString('hex')}`;
    const file = this.pathOf(tmpName, TMP);
    const fh: FileHandle = await open(file, WRITE_FLAGS, 0o600);
    const hash = createHash('sha256');
    const head: Buffer[] = [];
    let headLen = 0;
    let size = 0;
    try {
      for await (const chunk of source) {
        size += chunk.length;
        if (source.truncated || (maxBytes !== null && size > maxBytes))
          throw new AppError(
            'file_too_large',
            `The file is larger than the limit of ${maxBytes} bytes (RAG_FILE_MAX_SIZE)`,
          );
        hash.update(chunk);
        if (headLen < SNIFF_BYTES) {
          const part = chunk.subarray(0, SNIFF_BYTES - headLen);
          head.push(Buffer.from(part));
          headLen += part.length;
        }
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      if (source.truncated)
        throw new AppError(
          'file_too_large',
          `The file is larger than the limit of ${maxBytes} bytes (RAG_FILE_MAX_SIZE)`,
        );
      await fh.close();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(file).catch(() => undefined);
      throw e;
    }
    return { tmpName, size, sha256: hash.digest('hex'), head: Buffer.concat(head) };
  }

  /** Gives a received file its permanent random name. */
  async commit(tmpName: string): Promise<string> {
    const name = randomBytes(16).toString('hex');
    await rename(this.pathOf(tmpName, TMP), this.pathOf(name, NAME));
    return name;
  }

  async discard(tmpName: string): Promise<void> {
    await unlink(this.pathOf(tmpName, TMP)).catch(() => undefined);
  }

  async remove(storageName: string): Promise<void> {
    await unlink(this.pathOf(storageName, NAME)).catch(() => undefined);
  }

  /** Opens a stored file for reading (refuses symlinks). */
  async openRead(storageName: string): Promise<ReadStream> {
    const fh = await open(this.pathOf(storageName, NAME), READ_FLAGS);
    return fh.createReadStream({ start: 0, autoClose: true });
  }

  async readAll(storageName: string, maxBytes: number): Promise<Buffer> {
    const fh = await open(this.pathOf(storageName, NAME), READ_FLAGS);
    try {
      const st = await fh.stat();
      if (st.size > maxBytes) throw new AppError('file_too_large', 'The file is too large to process');
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }
}
