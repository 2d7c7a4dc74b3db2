import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { TestApp } from '../harness.js';

export interface Part {
  name?: string;
  filename: string;
  content: Buffer | string;
  contentType?: string;
  /** Send the name as RFC 5987 `filename*` (lets a test send NUL, CR/LF, RTL override …). */
  extended?: boolean;
}

export function multipartBody(parts: Part[], boundary = `----hrida${randomBytes(8).toString('hex')}`) {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = p.extended
      ? `form-data; name="${p.name ?? 'file'}"; filename*=UTF-8''${encodeURIComponent(p.filename)}`
      : `form-data; name="${p.name ?? 'file'}"; filename="${p.filename}"`;
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: ${disp}\r\nContent-Type: ${p.contentType ?? 'application/octet-stream'}\r\n\r\n`,
      ),
    );
    chunks.push(typeof p.content === 'string' ? Buffer.from(p.content) : p.content);
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export interface UploadRes {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Record<string, unknown>;
}

export async function upload(
  app: TestApp,
  token: string | undefined,
  parts: Part[],
  url = '/api/v1/files',
): Promise<UploadRes> {
  const { body, contentType } = multipartBody(parts);
  const r = await app.app.inject({
    method: 'POST',
    url,
    payload: body,
    headers: { 'content-type': contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    remoteAddress: '127.0.0.1',
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.body);
  } catch {
    parsed = undefined;
  }
  return { status: r.statusCode, body: parsed, headers: r.headers };
}

/** A multipart upload whose file part is `total` bytes produced lazily; reports how much was pulled. */
export function streamingUpload(total: number, chunk = 64 * 1024) {
  const boundary = `----hrida${randomBytes(8).toString('hex')}`;
  let pulled = 0;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const block = Buffer.alloc(chunk, 'a');
  async function* gen() {
    yield head;
    while (pulled < total) {
      const n = Math.min(chunk, total - pulled);
      pulled += n;
      yield n === chunk ? block : block.subarray(0, n);
    }
    yield tail;
  }
  return {
    stream: Readable.from(gen()),
    contentType: `multipart/form-data; boundary=${boundary}`,
    pulled: () => pulled,
  };
}

export const PNG_1X1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);
export const PDF_MIN = Buffer.from(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
);
