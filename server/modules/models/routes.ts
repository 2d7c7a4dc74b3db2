import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../context.js';
import { fromRequest } from '../../platform/audit/index.js';
import { isUniqueViolation } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { actorOf, removeResourceGrants, requirePermission, type Actor } from '../access/index.js';
import { parseIds } from '../connections/service.js';
import { useOpenAIErrors } from '../gateway/openai-errors.js';
import { attachGateway, type GatewayServices } from '../gateway/services.js';
import { assertReadableAttachments, presetAttachments } from '../knowledge/attach.js';
import { DIRECT_PREFIX, directModelId, modelNotFound, type PresetRow } from './catalog.js';

/**
 * Model listings (`/api/models` in HridaAI's shape, `/api/v1/models` in OpenAI's) and presets
 * (`/api/v1/presets`). A listing shows exactly the models the caller could dispatch: a connection
 * model with a grant, a preset whose whole chain the caller may use, the caller's own direct
 * connection models; BYPASS_MODEL_ACCESS_CONTROL lifts the grants, an API key's model allowlist
 * always narrows. Readers without write access never see a preset's system prompt or parameters.
 */

const presetId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, 'letters, digits and . _ : @ - (at most 128, no slash)');

const presetParams = z
  .object({
    temperature: z.number().min(0).max(2),
    top_p: z.number().min(0).max(1),
    max_tokens: z.number().int().min(1).max(10_000_000),
    frequency_penalty: z.number().min(-2).max(2),
    presence_penalty: z.number().min(-2).max(2),
    stop: z.union([z.string().max(200), z.array(z.string().max(200)).max(8)]),
    seed: z.number().int(),
    reasoning_effort: z.enum(['minimal', 'low', 'medium', 'high']),
  })
  .partial()
  .strict();

const presetFields = {
  name: z.string().trim().min(1).max(200),
  base_model_id: z.string().min(1).max(256),
  description: z.string().max(2000),
  system_prompt: z.string().max(100_000).nullable(),
  params: presetParams,
  is_active: z.boolean(),
  knowledge_ids: z.array(z.string().min(1).max(64)).max(50),
  file_ids: z.array(z.string().min(1).max(64)).max(50),
};

const createPresetBody = z
  .object({
    id: presetId,
    name: presetFields.name,
    base_model_id: presetFields.base_model_id,
    description: presetFields.description.optional(),
    system_prompt: presetFields.system_prompt.optional(),
    params: presetFields.params.optional(),
    is_active: presetFields.is_active.optional(),
    knowledge_ids: presetFields.knowledge_ids.optional(),
    file_ids: presetFields.file_ids.optional(),
  })
  .strict();

const updatePresetBody = z
  .object({
    name: presetFields.name.optional(),
    base_model_id: presetFields.base_model_id.optional(),
    description: presetFields.description.optional(),
    system_prompt: presetFields.system_prompt.optional(),
    params: presetFields.params.optional(),
    is_active: presetFields.is_active.optional(),
    knowledge_ids: presetFields.knowledge_ids.optional(),
    file_ids: presetFields.file_ids.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to change');

function parseParams(raw: string): Record<string, unknown> {
  try {
    return JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/**
 * A preset as the caller may see it: the prompt, parameters and attached knowledge only with write
 * access.
 */
export function presentPreset(p: PresetRow, canWrite: boolean) {
  const attached = presetAttachments(p);
  return {
    id: p.id,
    name: p.name,
    base_model_id: p.base_model_id,
    description: p.description,
    is_active: p.is_active === 1,
    owner_id: p.owner_id,
    can_write: canWrite,
    ...(canWrite
      ? {
          system_prompt: p.system_prompt,
          params: parseParams(p.params),
          knowledge_ids: attached.knowledgeIds,
          file_ids: attached.fileIds,
        }
      : {}),
    created_at: p.created_at,
    updated_at: p.updated_at,
  };
}

interface ListedModel {
  id: string;
  name: string;
  created: number;
  owned_by: string;
  kind: 'connection' | 'preset' | 'direct';
  connection?: { id: string; name: string; type: string };
  upstream_id?: string;
  preset?: ReturnType<typeof presentPreset>;
}

async function visibleModels(
  svc: GatewayServices,
  ctx: AppContext,
  actor: Actor,
  opts: { refresh: boolean; includeInactive: boolean },
): Promise<ListedModel[]> {
  const conns = await svc.catalog.connectionModels({ refresh: opts.refresh });
  const presets = await svc.catalog.presets();
  const presetMap = new Map(presets.map((p) => [p.id, p]));
  const chainOf = (p: PresetRow): string[] | null => {
    const ids = [p.id];
    let cur = p.base_model_id;
    while (presetMap.has(cur)) {
      const next = presetMap.get(cur)!;
      if (ids.includes(cur) || ids.length > 8 || next.is_active !== 1) return null;
      ids.push(cur);
      cur = next.base_model_id;
    }
    if (!conns.has(cur)) return null;
    ids.push(cur);
    return ids;
  };
  const chains = new Map(presets.map((p) => [p.id, chainOf(p)]));

  const direct: ListedModel[] = [];
  if (ctx.config.ENABLE_DIRECT_CONNECTIONS && !ctx.config.OFFLINE_MODE) {
    const rows = await svc.store.list(ctx.db, actor.userId);
    for (const r of rows.filter((x) => x.enabled === 1)) {
      let ids = parseIds(r.model_ids);
      if (!ids.length) {
        try {
          ids = (await svc.discovery.ids(svc.store.open(r))).ids;
        } catch {
          ids = [];
        }
      }
      for (const up of ids)
        direct.push({
          id: directModelId(r.id, up),
          name: `${r.name}: ${up}`,
          created: Math.floor(r.created_at / 1000),
          owned_by: 'user',
          kind: 'direct',
          connection: { id: r.id, name: r.name, type: r.type },
          upstream_id: up,
        });
    }
  }

  const all = [...conns.keys(), ...presets.flatMap((p) => chains.get(p.id) ?? []), ...direct.map((d) => d.id)];
  const owners = new Map(presets.map((p) => [p.id, p.owner_id]));
  const ok = await svc.access.readable(actor, all, owners);
  const admin = actor.role === 'admin';
  const out: ListedModel[] = [];
  for (const m of conns.values()) {
    if (!ok.has(m.id)) continue;
    out.push({
      id: m.id,
      name: m.id,
      created: Math.floor(m.connection.updatedAt / 1000),
      owned_by: m.connection.type,
      kind: 'connection',
      ...(admin
        ? {
            connection: { id: m.connection.id, name: m.connection.name, type: m.connection.type },
            upstream_id: m.upstreamId,
          }
        : {}),
    });
  }
  for (const p of presets) {
    const chain = chains.get(p.id);
    if (!chain || !chain.every((id) => ok.has(id))) continue;
    const canWrite = await svc.access.canWritePreset(actor, p);
    if (p.is_active !== 1 && !(opts.includeInactive && canWrite)) continue;
    out.push({
      id: p.id,
      name: p.name,
      created: Math.floor(p.created_at / 1000),
      owned_by: 'hridaai',
      kind: 'preset',
      preset: presentPreset(p, canWrite),
    });
  }
  for (const d of direct) if (ok.has(d.id)) out.push(d);
  return out;
}

export function registerModelRoutes(app: FastifyInstance, ctx: AppContext) {
  const svc = attachGateway(app, ctx);

  route(app, {
    method: 'GET',
    url: '/api/models',
    auth: 'session-or-key',
    policy: 'model grants (filtered list)',
    tags: ['models'],
    summary: 'Every model the caller may use (connections, presets, own direct connections)',
    query: z.object({ refresh: z.enum(['true', 'false']).optional() }),
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const refresh = req.data.query.refresh === 'true' && actor.role === 'admin';
      const models = await visibleModels(svc, ctx, actor, { refresh, includeInactive: true });
      return { data: models.map((m) => ({ ...m, object: 'model' })) };
    },
  });

  void app.register(async (scope) => {
    useOpenAIErrors(scope);
    route(scope, {
      method: 'GET',
      url: '/api/v1/models',
      auth: 'session-or-key',
      policy: 'model grants (filtered list)',
      tags: ['models'],
      summary: 'OpenAI-compatible model list',
      handler: async (req) => {
        const models = await visibleModels(svc, ctx, actorOf(ctx, req), { refresh: false, includeInactive: false });
        return {
          object: 'list',
          data: models.map((m) => ({ id: m.id, object: 'model', created: m.created, owned_by: m.owned_by })),
        };
      },
    });
    route(scope, {
      method: 'GET',
      url: '/api/v1/models/*',
      auth: 'session-or-key',
      policy: 'model grants',
      tags: ['models'],
      summary: 'OpenAI-compatible model lookup',
      params: z.object({ '*': z.string().min(1).max(300) }),
      handler: async (req) => {
        const id = req.data.params['*'];
        const models = await visibleModels(svc, ctx, actorOf(ctx, req), { refresh: false, includeInactive: false });
        const m = models.find((x) => x.id === id);
        if (!m) throw modelNotFound(id);
        return { id: m.id, object: 'model', created: m.created, owned_by: m.owned_by };
      },
    });
  });

  // ---- presets
  const idParam = z.object({ id: presetId });

  async function loadReadable(req: FastifyRequest, id: string): Promise<{ p: PresetRow; actor: Actor }> {
    const actor = actorOf(ctx, req);
    const p = await ctx.db.selectFrom('model_presets').selectAll().where('id', '=', id).executeTakeFirst();
    if (!p) throw new AppError('not_found', 'Preset not found');
    const ok = await svc.access.readable(actor, [p.id], new Map([[p.id, p.owner_id]]));
    if (!ok.has(p.id)) throw new AppError('not_found', 'Preset not found');
    return { p, actor };
  }

  /** The base chain must exist and every model of it must be usable by the author. */
  async function checkBase(actor: Actor, selfId: string, baseId: string) {
    if (baseId.startsWith(DIRECT_PREFIX))
      throw new AppError('validation_failed', 'A preset cannot be built on a direct connection model');
    const ids = await svc.catalog.chainIds(baseId);
    if (ids.includes(selfId)) throw new AppError('validation_failed', 'A preset cannot be built on itself');
    const last = ids[ids.length - 1]!;
    const presets = await svc.catalog.presets();
    if (!(await svc.catalog.findConnectionModel(last)))
      throw new AppError('validation_failed', `base_model_id: the model ${JSON.stringify(baseId)} does not exist`);
    const owners = new Map(presets.map((p) => [p.id, p.owner_id]));
    const ok = await svc.access.readable(actor, ids, owners);
    if (!ids.every((id) => ok.has(id)))
      throw new AppError('validation_failed', `base_model_id: the model ${JSON.stringify(baseId)} does not exist`);
  }

  route(app, {
    method: 'GET',
    url: '/api/v1/presets',
    auth: 'session-or-key',
    policy: 'model grants (read) or owner',
    tags: ['models'],
    handler: async (req) => {
      const actor = actorOf(ctx, req);
      const rows = await ctx.db.selectFrom('model_presets').selectAll().orderBy('created_at').orderBy('id').execute();
      const ok = await svc.access.readable(
        actor,
        rows.map((r) => r.id),
        new Map(rows.map((r) => [r.id, r.owner_id])),
      );
      const items = [];
      for (const r of rows) if (ok.has(r.id)) items.push(presentPreset(r, await svc.access.canWritePreset(actor, r)));
      return { items };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/presets/:id',
    auth: 'session-or-key',
    policy: 'model grant (read) or owner',
    tags: ['models'],
    params: idParam,
    handler: async (req) => {
      const { p, actor } = await loadReadable(req, req.data.params.id);
      return presentPreset(p, await svc.access.canWritePreset(actor, p));
    },
  });

  route(app, {
    method: 'POST',
    url: '/api/v1/presets',
    auth: 'session',
    policy: 'workspace.models permission + use of every model of the base chain',
    tags: ['models'],
    summary: 'Creates a preset (workspace model): base model + system prompt + parameters',
    body: createPresetBody,
    handler: async (req, reply) => {
      const actor = actorOf(ctx, req);
      await requirePermission(ctx.db, actor, 'workspace.models');
      const b = req.data.body;
      if (await svc.catalog.findConnectionModel(b.id))
        throw new AppError('conflict', 'A model with this id already exists');
      await checkBase(actor, b.id, b.base_model_id);
      await assertReadableAttachments(ctx.db, actor, { knowledgeIds: b.knowledge_ids, fileIds: b.file_ids });
      const now = Date.now();
      const row: PresetRow = {
        id: b.id,
        name: b.name,
        base_model_id: b.base_model_id,
        description: b.description ?? '',
        system_prompt: b.system_prompt ?? null,
        params: JSON.stringify(b.params ?? {}),
        owner_id: actor.userId,
        is_active: b.is_active === false ? 0 : 1,
        knowledge_ids: JSON.stringify([...new Set(b.knowledge_ids ?? [])]),
        file_ids: JSON.stringify([...new Set(b.file_ids ?? [])]),
        created_at: now,
        updated_at: now,
      };
      try {
        await ctx.db.transaction().execute(async (trx) => {
          await trx.insertInto('model_presets').values(row).execute();
          await ctx.audit.record(trx, {
            action: 'preset.created',
            ...fromRequest(req),
            resourceType: 'model',
            resourceId: row.id,
            after: presentPreset(row, true),
          });
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('conflict', 'A model with this id already exists');
        throw e;
      }
      await svc.catalog.invalidate();
      reply.code(201);
      return presentPreset(row, true);
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/api/v1/presets/:id',
    auth: 'session',
    policy: 'preset write (owner or write grant, with workspace.models)',
    tags: ['models'],
    params: idParam,
    body: updatePresetBody,
    handler: async (req) => {
      const { p, actor } = await loadReadable(req, req.data.params.id);
      if (!(await svc.access.canWritePreset(actor, p)))
        throw new AppError('forbidden', 'You may not change this preset');
      const b = req.data.body;
      if (b.base_model_id !== undefined && b.base_model_id !== p.base_model_id)
        await checkBase(actor, p.id, b.base_model_id);
      // Every id is checked against the author of this change (404 for one they cannot read).
      await assertReadableAttachments(ctx.db, actor, { knowledgeIds: b.knowledge_ids, fileIds: b.file_ids });
      const patch: Partial<PresetRow> = { updated_at: Math.max(Date.now(), p.updated_at + 1) };
      if (b.name !== undefined) patch.name = b.name;
      if (b.base_model_id !== undefined) patch.base_model_id = b.base_model_id;
      if (b.description !== undefined) patch.description = b.description;
      if (b.system_prompt !== undefined) patch.system_prompt = b.system_prompt;
      if (b.params !== undefined) patch.params = JSON.stringify(b.params);
      if (b.is_active !== undefined) patch.is_active = b.is_active ? 1 : 0;
      if (b.knowledge_ids !== undefined) patch.knowledge_ids = JSON.stringify([...new Set(b.knowledge_ids)]);
      if (b.file_ids !== undefined) patch.file_ids = JSON.stringify([...new Set(b.file_ids)]);
      const after = { ...p, ...patch };
      await ctx.db.transaction().execute(async (trx) => {
        const r = await trx
          .updateTable('model_presets')
          .set(patch)
          .where('id', '=', p.id)
          .where('updated_at', '=', p.updated_at)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1)
          throw new AppError('conflict', 'The preset changed meanwhile; reload and try again');
        await ctx.audit.record(trx, {
          action: 'preset.updated',
          ...fromRequest(req),
          resourceType: 'model',
          resourceId: p.id,
          before: presentPreset(p, true),
          after: presentPreset(after, true),
        });
      });
      await svc.catalog.invalidate();
      return presentPreset(after, true);
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/api/v1/presets/:id',
    auth: 'session',
    policy: 'preset delete (owner with workspace.models, or admin bypass)',
    tags: ['models'],
    params: idParam,
    handler: async (req) => {
      const { p, actor } = await loadReadable(req, req.data.params.id);
      if (!(await svc.access.canDeletePreset(actor, p)))
        throw new AppError('forbidden', 'You may not delete this preset');
      await ctx.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('model_presets').where('id', '=', p.id).execute();
        await removeResourceGrants(trx, { type: 'model', id: p.id });
        await ctx.audit.record(trx, {
          action: 'preset.deleted',
          ...fromRequest(req),
          resourceType: 'model',
          resourceId: p.id,
          before: presentPreset(p, true),
        });
      });
      await svc.catalog.invalidate();
      return { status: 'deleted' };
    },
  });
}
