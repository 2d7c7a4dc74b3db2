import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { AppError } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { actorOf, authorize, removeResourceGrants } from '../access/index.js';
import { contentDisposition, extensionOf, sanitizeFilename } from './names.js';
import { presentFile } from './presenter.js';
import { escapeHtml, previewHeaders, wrapUntrustedHtml } from './sandbox.js';
import { fileStore, findReadableFile, type FileRow } from './service.js';
import { contentTypeFor, contradiction, isActiveContentType, sniff } from './sniff.js';

const idParam = z.object({ id: z.string().min(1).max(64) });
const MB = 1024 * 1024;

export function maxUploadBytes(ctx: Pick<AppContext, 'config'>): number | null {
  return ctx.config.RAG_FILE_MAX_SIZE === null ? null : ctx.config.RAG_FILE_MAX_SIZE * MB;
}

/** RAG_ALLOWED_FILE_EXTENSIONS (already normalised: `.pdf`, `pdf`, `PDF` → `pdf`). Empty: all. */
export function checkExtensionAllowed(ctx: Pick<AppContext, 'config'>, ext: string): void {
  const allowed = ctx.config.RAG_ALLOWED_FILE_EXTENSIONS;
  if (allowed.length === 0) return;
  if (!ext || !allowed.includes(ext))
    throw new AppError(
      'file_type_not_allowed',
      `Files of type ${ext ? '.' + ext : '(no extension)'} are not allowed (RAG_ALLOWED_FILE_EXTENSIONS)`,
    );
}

function multipartError(e: unknown): Error {
  const code = (e as { code?: string }).code;
  if (code === 'FST_FILES_LIMIT')
    return new AppError('too_many_files', 'Too many files in one request (RAG_FILE_MAX_COUNT)');
  if (code === 'FST_REQ_FILE_TOO_LARGE')
    return new AppError('file_too_large', 'The file is larger than the limit (RAG_FILE_MAX_SIZE)');
  if (code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT' || code === 'FST_PROTO_VIOLATION')
    return new AppError('invalid_request', 'The multipart body has too many or invalid parts');
  if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE')
    return new AppError('unsupported_media_type', 'Send the upload as multipart/form-data');
  if (e instanceof AppError) return e;
  if (e instanceof Error && /multipart|boundary|Unexpected end/i.test(e.message))
    return new AppError('invalid_request', 'The multipart body is malformed');
  return e as Error;
}

/**
 * Every upload path goes through here: streaming to disk with the size cut, the count limit,
 * name sanitising, the extension allowlist and magic-byte agreement. Returns the stored rows; on
 * any refusal nothing of the request is kept.
 */
export async function receiveUploads(ctx: AppContext, req: FastifyRequest, reply: FastifyReply): Promise<FileRow[]> {
  if (!req.isMultipart()) throw new AppError('unsupported_media_type', 'Send the upload as multipart/form-data');
  const store = fileStore(ctx);
  const maxBytes = maxUploadBytes(ctx);
  const maxCount = ctx.config.RAG_FILE_MAX_COUNT;
  const userId = req.auth!.user.id;
  const pending: { tmpName: string; row: Omit<FileRow, 'storage_name'> }[] = [];
  try {
    const parts = req.parts({
      limits: {
        fileSize: maxBytes ?? Infinity,
        files: maxCount ?? Infinity,
        fields: 20,
        fieldSize: 4096,
        parts: (maxCount ?? 1000) + 20,
        headerPairs: 50,
      },
    });
    for await (const part of parts) {
      if (part.type !== 'file') continue;
      if (part.fieldname !== 'file' && part.fieldname !== 'files') {
        part.file.resume();
        throw new AppError('invalid_request', 'Send files in the multipart field "file"');
      }
      if (maxCount !== null && pending.length >= maxCount)
        throw new AppError('too_many_files', `At most ${maxCount} files per request (RAG_FILE_MAX_COUNT)`);
      const filename = sanitizeFilename(part.filename);
      const ext = extensionOf(filename);
      checkExtensionAllowed(ctx, ext); // before reading a byte of the content
      const received = await store.receive(
        part.file as unknown as AsyncIterable<Buffer> & { truncated?: boolean },
        maxBytes,
      );
      const sniffed = sniff(received.head);
      const problem = contradiction(ext, sniffed);
      if (problem) {
        await store.discard(received.tmpName);
        throw new AppError('file_content_mismatch', problem);
      }
      const now = Date.now();
      pending.push({
        tmpName: received.tmpName,
        row: {
          id: randomUUID(),
          user_id: userId,
          filename,
          ext,
          content_type: contentTypeFor(ext, sniffed),
          size: received.size,
          sha256: received.sha256,
          created_at: now,
          updated_at: now,
        },
      });
    }
    if (pending.length === 0) throw new AppError('validation_failed', 'No file in the multipart field "file"');
    const rows: FileRow[] = [];
    for (const p of pending) rows.push({ ...p.row, storage_name: await store.commit(p.tmpName) });
    pending.length = 0;
    try {
      await ctx.db.transaction().execute(async (trx) => {
        for (const row of rows) {
          await trx.insertInto('files').values(row).execute();
          await ctx.audit.record(trx, {
            ...fromRequest(req),
            action: 'file.uploaded',
            resourceType: 'file',
            resourceId: row.id,
            after: { filename: row.filename, size: row.size, content_type: row.content_type, sha256: row.sha256 },
          });
        }
      });
    } catch (e) {
      for (const row of rows) await store.remove(row.storage_name);
      throw e;
    }
    return rows;
  } catch (e) {
    for (const p of pending) await store.discard(p.tmpName);
    const err = multipartError(e);
    if (err instanceof AppError && (err.code === 'file_too_large' || err.code === 'too_many_files'))
      reply.header('connection', 'close'); // stop the rest of the upload
    throw err;
  }
}

export function registerFileRoutes(app: FastifyInstance, ctx: AppContext) {
  if (ctx.config.RAG_FILE_MAX_SIZE === null)
    ctx.log.warn('RAG_FILE_MAX_SIZE is unset: uploads have no size limit (they still stream to disk).');
  if (ctx.config.RAG_FILE_MAX_COUNT === null)
    ctx.log.warn('RAG_FILE_MAX_COUNT is unset: an upload request may carry any number of files.');
  fileStore(ctx); // creates DATA_DIR/uploads (0700) and refuses a symlinked directory at start

  // multipart parsing exists only inside this scope: no other route accepts multipart bodies.
  app.register(async (scope) => {
    await scope.register(multipart, { throwFileSizeLimit: false });
    route(scope, {
      method: 'POST',
      url: '/api/v1/files',
      auth: 'session-or-key',
      policy: 'self:files.upload (owner = caller)',
      tags: ['files'],
      summary:
        'Upload files (multipart field `file`, repeatable). Returns the first file; `items` lists every stored file.',
      handler: async (req, reply) => {
        const rows = await receiveUploads(ctx, req, reply);
        reply.code(201);
        return { ...presentFile(rows[0]!), items: rows.map(presentFile) };
      },
    });
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/files',
    auth: 'session-or-key',
    policy: 'self:files.list (user_id in WHERE)',
    tags: ['files'],
    query: z.object({
      limit: z.coerce.number().int().min(1).max(200).default(50),
      page: z.coerce.number().int().min(1).max(100_000).default(1),
    }),
    handler: async (req) => {
      const { limit, page } = req.data.query;
      const rows = await ctx.db
        .selectFrom('files')
        .selectAll()
        .where('user_id', '=', req.auth!.user.id)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(limit)
        .offset((page - 1) * limit)
        .execute();
      return { items: rows.map(presentFile), page, limit };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/files/:id',
    auth: 'session-or-key',
    policy: 'resource:file.read (owner, grant or readable knowledge base; else 404)',
    tags: ['files'],
    params: idParam,
    handler: async (req) => presentFile(await findReadableFile(ctx.db, actorOf(ctx, req), req.data.params.id)),
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/files/:id/content',
    auth: 'session-or-key',
    policy: 'resource:file.read (owner, grant or readable knowledge base; else 404)',
    tags: ['files'],
    summary: 'Download: always an attachment, with nosniff and a sandbox CSP',
    params: idParam,
    handler: async (req, reply) => {
      const f = await findReadableFile(ctx.db, actorOf(ctx, req), req.data.params.id);
      const stream = await fileStore(ctx).openRead(f.storage_name);
      reply
        .header(
          'content-type',
          isActiveContentType(f.content_type)
            ? 'application/octet-stream'
            : f.content_type.startsWith('text/')
              ? `${f.content_type}; charset=utf-8`
              : f.content_type,
        )
        .header('content-length', String(f.size))
        .header('content-disposition', contentDisposition('attachment', f.filename))
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "sandbox; default-src 'none'")
        .header('cross-origin-resource-policy', 'same-origin')
        .header('cache-control', 'private, no-store');
      return reply.send(stream);
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/files/:id/preview',
    auth: 'session-or-key',
    policy: 'resource:file.read (owner, grant or readable knowledge base; else 404)',
    tags: ['files'],
    summary: 'HTML preview for a sandboxed iframe: IFRAME_CSP and `sandbox` as response headers',
    params: idParam,
    handler: async (req, reply) => {
      const f = await findReadableFile(ctx.db, actorOf(ctx, req), req.data.params.id);
      if (!f.content_type.startsWith('text/') && f.content_type !== 'application/json')
        throw new AppError('unsupported_media_type', 'Only text files can be previewed');
      const bytes = await fileStore(ctx).readAll(f.storage_name, 5 * MB);
      const text = bytes.toString('utf8');
      const html =
        f.content_type === 'text/html'
          ? wrapUntrustedHtml(text, ctx.config.IFRAME_CSP)
          : wrapUntrustedHtml(`<pre>${escapeHtml(text)}</pre>`, ctx.config.IFRAME_CSP);
      for (const [k, v] of Object.entries(previewHeaders(ctx.config.IFRAME_CSP))) reply.header(k, v);
      reply.header('content-disposition', contentDisposition('inline', `${f.filename}.html`));
      return reply.send(html);
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/files/:id',
    auth: 'session-or-key',
    policy: 'resource:file.delete (owner or admin bypass; else 404/403)',
    tags: ['files'],
    params: idParam,
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const { id } = req.data.params;
      const f = await findReadableFile(ctx.db, actor, id);
      await authorize(ctx.db, actor, 'delete', { type: 'file', id }, 'File');
      await ctx.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('files').where('id', '=', id).execute();
        await removeResourceGrants(trx, { type: 'file', id });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'file.deleted',
          resourceType: 'file',
          resourceId: id,
          before: { filename: f.filename, size: f.size },
        });
      });
      await fileStore(ctx).remove(f.storage_name);
      return { status: 'deleted' };
    },
  });
}
