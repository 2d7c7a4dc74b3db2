import type { AppContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import {
  decide,
  hasPermission,
  keyAllowsModel,
  MODEL_RESOURCE_TYPE,
  registerResourceType,
  type Actor,
} from '../access/index.js';
import { DIRECT_PREFIX, modelNotFound, type PresetRow } from './catalog.js';

/**
 * Who may use which model. Connection models and presets share one id space and one resource
 * type (`model`, grants only — a connection model has no owner row); a preset's creator is its
 * owner here. A request is allowed only when the caller may read EVERY model of the preset chain
 * (the requested preset, the presets under it, and the connection model actually dispatched), and
 * an API key with a model allowlist must list every one of them too. BYPASS_MODEL_ACCESS_CONTROL
 * skips the grants (never the key allowlist, never the pending lockout). A user's own direct
 * connection models need no grant (the owner is in the SQL WHERE that found them).
 *
 * Decisions are reused for SESSION_CACHE_TTL_MS (as session checks are), so a revoked grant takes
 * effect within that time.
 */
registerResourceType({ type: MODEL_RESOURCE_TYPE, workspacePermission: 'workspace.models' });

const MAX_CACHE = 20_000;

export class ModelAccess {
  private cache = new Map<string, { read: boolean; at: number }>();

  constructor(private readonly ctx: AppContext) {}

  private cacheKey(actor: Actor, id: string): string {
    return `${actor.userId}\u0000${actor.apiKey?.id ?? ''}\u0000${actor.role}\u0000${id}`;
  }

  /** Which of `ids` the actor may read (use and see). Presets they own count as readable. */
  async readable(actor: Actor, ids: string[], owners: Map<string, string | null> = new Map()): Promise<Set<string>> {
    const out = new Set<string>();
    if (!actor.active || actor.role === 'pending') return out;
    const now = Date.now();
    const ttl = this.ctx.config.SESSION_CACHE_TTL_MS;
    const unknown: string[] = [];
    for (const id of new Set(ids)) {
      if (!keyAllowsModel(actor, id)) continue;
      if (id.startsWith(DIRECT_PREFIX)) {
        out.add(id); // found through the owner's WHERE; nothing else can name it
        continue;
      }
      if (this.ctx.config.BYPASS_MODEL_ACCESS_CONTROL || owners.get(id) === actor.userId) {
        out.add(id);
        continue;
      }
      const c = this.cache.get(this.cacheKey(actor, id));
      if (c && now - c.at <= ttl) {
        if (c.read) out.add(id);
      } else unknown.push(id);
    }
    if (unknown.length) {
      const decisions = await decide(this.ctx.db, actor, MODEL_RESOURCE_TYPE, unknown);
      for (const id of unknown) {
        const read = decisions.get(id)?.read === true;
        if (read) out.add(id);
        if (this.cache.size >= MAX_CACHE) this.cache.clear();
        this.cache.set(this.cacheKey(actor, id), { read, at: now });
      }
    }
    return out;
  }

  /**
   * Throws unless the actor may use every model of the chain: `model_not_found` (404) when the
   * requested model itself is not theirs to see, `api_key_model_forbidden` (403) when the API key's
   * allowlist lacks a model of the chain, `model_access_denied` (403) when a model under a preset
   * they may use is not theirs.
   */
  async assertUsable(actor: Actor, requested: string, ids: string[], chain: PresetRow[]): Promise<void> {
    const owners = new Map(chain.map((p) => [p.id, p.owner_id]));
    // The user's own rights first (so a key's list never reveals whether a model exists) …
    const ok = await this.readable(actor.apiKey ? { ...actor, apiKey: null } : actor, ids, owners);
    if (!ok.has(requested)) throw modelNotFound(requested);
    // … then the API key's allowlist, on every model of the chain …
    if (ids.some((id) => !keyAllowsModel(actor, id)))
      throw new AppError(
        'api_key_model_forbidden',
        keyAllowsModel(actor, requested)
          ? 'This API key may not use a model this preset is built on'
          : 'This API key may not use this model',
      );
    // … then every model under the requested one.
    if (ids.some((id) => !ok.has(id)))
      throw new AppError('model_access_denied', 'This model is built on a model you do not have access to');
  }

  /** May the actor change (and see the prompt and parameters of) a preset? */
  async canWritePreset(actor: Actor, preset: PresetRow): Promise<boolean> {
    if (!actor.active || actor.role === 'pending') return false;
    if (actor.adminBypass) return true;
    if (preset.owner_id !== null && preset.owner_id === actor.userId)
      return hasPermission(this.ctx.db, actor, 'workspace.models');
    const d = await decide(this.ctx.db, actor, MODEL_RESOURCE_TYPE, [preset.id]);
    return d.get(preset.id)?.write === true;
  }

  /** May the actor delete a preset? (its owner with the workspace permission, or an admin with the bypass) */
  async canDeletePreset(actor: Actor, preset: PresetRow): Promise<boolean> {
    if (!actor.active || actor.role === 'pending') return false;
    if (actor.adminBypass) return true;
    return (
      preset.owner_id !== null &&
      preset.owner_id === actor.userId &&
      (await hasPermission(this.ctx.db, actor, 'workspace.models'))
    );
  }

  clear(): void {
    this.cache.clear();
  }
}
