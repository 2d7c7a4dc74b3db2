import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { accessibleWhere, actorOf, decideOne, removeResourceGrants, requirePermission } from '../access/index.js';
import { checkExtensionAllowed } from '../files/routes.js';
import { findWritableFile, readFileBytes } from '../files/service.js';
import { embeddingCounts, embeddingWorker, markAllForReindex, scheduleEmbeddingWorker } from './backfill.js';
import { extractText } from './extract.js';
import {
  addDocument,
  KNOWLEDGE_TYPE,
  loadKnowledge,
  retrieve,
  type KnowledgeBase,
  type KnowledgeDocument,
} from './service.js';
import { loadWebPage } from './web-loader.js';

const idParam = z.object({ id: z.string().min(1).max(64) });
const EXTRACT_MAX_BYTES = 100 * 1024 * 1024;

export function presentKnowledge(kb: KnowledgeBase) {
  return {
    id: kb.id,
    user_id: kb.user_id,
    name: kb.name,
    description: kb.description,
    created_at: kb.created_at,
    updated_at: kb.updated_at,
  };
}

export function presentDocument(d: KnowledgeDocument) {
  return {
    id: d.id,
    knowledge_id: d.knowledge_id,
    file_id: d.file_id,
    source_type: d.source_type,
    url: d.source_url,
    title: d.title,
    content_type: d.content_type,
    size: Number(d.size),
    chunk_count: Number(d.chunk_count),
    created_at: d.created_at,
  };
}

export function registerKnowledgeRoutes(app: FastifyInstance, ctx: AppContext) {
  scheduleEmbeddingWorker(app, ctx);

  route(app, {
    method: 'GET',
    url: '/api/v1/knowledge/embeddings/status',
    auth: 'admin',
    policy: 'admin:knowledge.embeddings.read',
    tags: ['knowledge'],
    summary: 'Embedding progress of every knowledge chunk for RAG_EMBEDDING_MODEL, and this instance’s worker',
    handler: async () => {
      return { ...(await embeddingCounts(ctx)), worker: embeddingWorker(ctx).state };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/knowledge/embeddings/reindex',
    auth: 'admin',
    policy: 'admin:knowledge.embeddings.reindex',
    tags: ['knowledge'],
    summary: 'Drop every stored vector so the worker embeds all chunks again (after the model behind the id changed)',
    handler: async (req, reply) => {
      const marked = await ctx.db.transaction().execute(async (trx) => {
        const n = await markAllForReindex(trx);
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'knowledge.embeddings_reindexed',
          resourceType: 'knowledge',
          details: { chunks: n, model: ctx.config.RAG_EMBEDDING_MODEL ?? null },
        });
        return n;
      });
      embeddingWorker(ctx).kick({ force: true });
      reply.code(202);
      return { status: 'reindexing', marked, ...(await embeddingCounts(ctx)) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/knowledge',
    auth: 'session-or-key',
    policy: 'permission:workspace.knowledge (creator becomes owner)',
    tags: ['knowledge'],
    body: z.object({ name: z.string().trim().min(1).max(200), description: z.string().max(2000).optional() }).strict(),
    handler: async (req, reply) => {
      const actor = actorOf(ctx, req);
      await requirePermission(ctx.db, actor, 'workspace.knowledge');
      const now = Date.now();
      const kb: KnowledgeBase = {
        id: randomUUID(),
        user_id: actor.userId,
        name: req.data.body.name,
        description: req.data.body.description ?? '',
        created_at: now,
        updated_at: now,
      };
      await ctx.db.transaction().execute(async (trx) => {
        await trx.insertInto('knowledge_bases').values(kb).execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'knowledge.created',
          resourceType: 'knowledge',
          resourceId: kb.id,
          after: { name: kb.name },
        });
      });
      reply.code(201);
      return presentKnowledge(kb);
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/knowledge',
    auth: 'session-or-key',
    policy: 'resource:knowledge.read (owner, grants, admin bypass in WHERE)',
    tags: ['knowledge'],
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const rows = await ctx.db
        .selectFrom('knowledge_bases as kb')
        .selectAll()
        .where(accessibleWhere(actor, KNOWLEDGE_TYPE, 'read', { id: 'kb.id', owner: 'kb.user_id' }))
        .orderBy('kb.updated_at', 'desc')
        .orderBy('kb.id')
        .limit(500)
        .execute();
      return { items: rows.map(presentKnowledge) };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/knowledge/:id',
    auth: 'session-or-key',
    policy: 'resource:knowledge.read',
    tags: ['knowledge'],
    params: idParam,
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const kb = await loadKnowledge(ctx.db, actor, req.data.params.id, 'read');
      const docs = await ctx.db
        .selectFrom('knowledge_documents')
        .selectAll()
        .where('knowledge_id', '=', kb.id)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      const d = await decideOne(ctx.db, actor, { type: KNOWLEDGE_TYPE, id: kb.id });
      return {
        ...presentKnowledge(kb),
        documents: docs.map(presentDocument),
        permissions: { read: d.read, write: d.write, share: d.share, delete: d.delete },
      };
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/knowledge/:id',
    auth: 'session-or-key',
    policy: 'resource:knowledge.write',
    tags: ['knowledge'],
    params: idParam,
    body: z
      .object({ name: z.string().trim().min(1).max(200).optional(), description: z.string().max(2000).optional() })
      .strict(),
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const kb = await loadKnowledge(ctx.db, actor, req.data.params.id, 'write');
      const patch = { ...req.data.body, updated_at: Date.now() };
      await ctx.db.transaction().execute(async (trx) => {
        await trx.updateTable('knowledge_bases').set(patch).where('id', '=', kb.id).execute();
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'knowledge.updated',
          resourceType: 'knowledge',
          resourceId: kb.id,
          before: { name: kb.name },
          after: req.data.body,
        });
      });
      return presentKnowledge({ ...kb, ...patch });
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/knowledge/:id',
    auth: 'session-or-key',
    policy: 'resource:knowledge.delete',
    tags: ['knowledge'],
    params: idParam,
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const kb = await loadKnowledge(ctx.db, actor, req.data.params.id, 'delete');
      await ctx.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('knowledge_bases').where('id', '=', kb.id).execute();
        await removeResourceGrants(trx, { type: KNOWLEDGE_TYPE, id: kb.id });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'knowledge.deleted',
          resourceType: 'knowledge',
          resourceId: kb.id,
          before: { name: kb.name },
        });
      });
      return { status: 'deleted' };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/knowledge/:id/files',
    auth: 'session-or-key',
    policy: 'resource:knowledge.write + resource:file.write (file_id authorised too)',
    tags: ['knowledge'],
    params: idParam,
    body: z.object({ file_id: z.string().min(1).max(64) }).strict(),
    handler: async (req, reply) => {
      const actor = actorOf(ctx, req);
      const kb = await loadKnowledge(ctx.db, actor, req.data.params.id, 'write');
      const file = await findWritableFile(ctx.db, actor, req.data.body.file_id);
      checkExtensionAllowed(ctx, file.ext);
      const existing = await ctx.db
        .selectFrom('knowledge_documents')
        .selectAll()
        .where('knowledge_id', '=', kb.id)
        .where('file_id', '=', file.id)
        .executeTakeFirst();
      if (existing) return presentDocument(existing);
      const { text } = await extractText(
        await readFileBytes(ctx, file, EXTRACT_MAX_BYTES),
        file.ext,
        file.content_type,
      );
      const doc = await ctx.db.transaction().execute(async (trx) => {
        const d = await addDocument(trx, {
          knowledgeId: kb.id,
          fileId: file.id,
          sourceType: 'file',
          sourceUrl: null,
          title: file.filename,
          contentType: file.content_type,
          size: Number(file.size),
          text,
          addedBy: actor.actorId,
        });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'knowledge.file_added',
          resourceType: 'knowledge',
          resourceId: kb.id,
          after: { document_id: d.id, file_id: file.id },
        });
        return d;
      });
      // Stored and searchable by full text now; the embedding worker adds the vectors.
      embeddingWorker(ctx).kick();
      reply.code(201);
      return presentDocument(doc);
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/knowledge/:id/web',
    auth: 'session-or-key',
    policy: 'resource:knowledge.write; the URL goes through safe-fetch (url_blocked)',
    tags: ['knowledge'],
    summary: 'Load a web page into the knowledge base (WEB_LOADER_ENGINE); refused URLs answer 400 url_blocked',
    params: idParam,
    body: z.object({ url: z.string().min(1).max(4096) }).strict(),
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const kb = await loadKnowledge(ctx.db, actor, req.data.params.id, 'write');
      const page = await loadWebPage(ctx, req.data.body.url);
      const doc = await ctx.db.transaction().execute(async (trx) => {
        const d = await addDocument(trx, {
          knowledgeId: kb.id,
          fileId: null,
          sourceType: 'web',
          sourceUrl: page.url,
          title: page.title,
          contentType: page.contentType,
          size: page.size,
          text: page.text,
          addedBy: actor.actorId,
        });
        await ctx.audit.record(trx, {
          ...fromRequest(req),
          action: 'knowledge.web_added',
          resourceType: 'knowledge',
          resourceId: kb.id,
          after: { document_id: d.id, url: page.url },
        });
        return d;
      });
      // Stored and searchable by full text now; the embedding worker adds the vectors.
      embeddingWorker(ctx).kick();
      return presentDocument(doc);
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/knowledge/:id/documents/:docId',
    auth: 'session-or-key',
    policy: 'resource:knowledge.write (knowledge id in WHERE)',
    tags: ['knowledge'],
    params: z.object({ id: z.string().min(1).max(64), docId: z.string().min(1).max(64) }),
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const kb = await loadKnowledge(ctx.db, actor, req.data.params.id, 'write');
      const n = await ctx.db.transaction().execute(async (trx) => {
        const r = await trx
          .deleteFrom('knowledge_documents')
          .where('id', '=', req.data.params.docId)
          .where('knowledge_id', '=', kb.id)
          .executeTakeFirst();
        if (Number(r.numDeletedRows) > 0)
          await ctx.audit.record(trx, {
            ...fromRequest(req),
            action: 'knowledge.document_removed',
            resourceType: 'knowledge',
            resourceId: kb.id,
            before: { document_id: req.data.params.docId },
          });
        return Number(r.numDeletedRows);
      });
      if (n === 0) throw notFound('Document');
      return { status: 'deleted' };
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/retrieval/query',
    auth: 'session-or-key',
    policy: 'resource:knowledge.read for every knowledge id (404), readable chunks only in SQL',
    tags: ['knowledge'],
    summary: 'Full-text retrieval over knowledge bases, with citations',
    body: z
      .object({
        query: z.string().min(1).max(2000),
        knowledge_ids: z.array(z.string().min(1).max(64)).max(50).optional(),
        limit: z.number().int().min(1).max(50).optional(),
      })
      .strict(),
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const passages = await retrieve(ctx, actor, {
        query: req.data.body.query,
        knowledgeIds: req.data.body.knowledge_ids,
        limit: req.data.body.limit,
        requestId: req.id,
      });
      return { items: passages };
    },
  });
}
