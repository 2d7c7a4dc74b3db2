import type { AppContext } from '../../context.js';
import { AppError } from '../../platform/http/errors.js';
import type { Discovery } from '../connections/discovery.js';
import type { ConnectionStore, OpenConnection } from '../connections/service.js';
import type { ModelPresetsTable } from './tables.js';

/**
 * Every model HridaAI can dispatch: the models of the admin connections (the upstream id, with
 * `<prefix_id>.` in front when the connection has a prefix), the presets, and — when direct
 * connections are enabled — a user's own connection models (`direct/<connection-id>/<upstream-id>`).
 *
 * The connections and presets are read from the database into a snapshot that is reused for
 * CATALOG_TTL_MS and dropped at once on every change (here, and through Redis on every instance).
 */

export const CATALOG_TTL_MS = 2000;
export const MAX_PRESET_DEPTH = 8;
export const DIRECT_PREFIX = 'direct/';
const CHANNEL = 'gateway-catalog';

export type PresetRow = ModelPresetsTable;

export interface ConnectionModel {
  /** The id clients use. */
  id: string;
  upstreamId: string;
  connection: OpenConnection;
}

export interface Resolved {
  requested: string;
  /** Presets from the requested one down to the last before the base model. */
  chain: PresetRow[];
  base: ConnectionModel;
  /** Every model id the request touches (presets of the chain, then the base): grants and limits apply to each. */
  ids: string[];
}

interface Snapshot {
  at: number;
  connections: OpenConnection[];
  /** Connections whose secrets could not be opened (skipped, logged). */
  broken: string[];
  presets: Map<string, PresetRow>;
}

/** ENABLE_DIRECT_CONNECTIONS, and not OFFLINE_MODE (a user's connection is not one an admin configured). */
export function assertDirectAllowed(config: AppContext['config']): void {
  if (!config.ENABLE_DIRECT_CONNECTIONS)
    throw new AppError('direct_connections_disabled', 'Direct connections are disabled on this server');
  if (config.OFFLINE_MODE)
    throw new AppError(
      'direct_connections_disabled',
      'Direct connections are unavailable in offline mode (OFFLINE_MODE)',
    );
}

export function clientModelId(conn: Pick<OpenConnection, 'prefixId'>, upstreamId: string): string {
  return conn.prefixId ? `${conn.prefixId}.${upstreamId}` : upstreamId;
}

export function directModelId(connectionId: string, upstreamId: string): string {
  return `${DIRECT_PREFIX}${connectionId}/${upstreamId}`;
}

export class ModelCatalog {
  private snap: Snapshot | null = null;
  private loading: Promise<Snapshot> | null = null;
  private generation = 0;

  constructor(
    private readonly ctx: AppContext,
    private readonly store: ConnectionStore,
    private readonly discovery: Discovery,
  ) {}

  async start(): Promise<void> {
    if (this.ctx.redis) await this.ctx.redis.subscribe(CHANNEL, () => this.dropLocal());
  }

  private dropLocal(): void {
    this.generation += 1;
    this.snap = null;
  }

  /** Call after a connection or preset change commits. */
  async invalidate(): Promise<void> {
    this.dropLocal();
    if (this.ctx.redis) await this.ctx.redis.publish(CHANNEL, '1');
  }

  async snapshot(): Promise<Snapshot> {
    const s = this.snap;
    if (s && Date.now() - s.at < CATALOG_TTL_MS) return s;
    if (this.loading) return this.loading;
    const gen = this.generation;
    this.loading = this.load()
      .then((fresh) => {
        if (gen === this.generation) this.snap = fresh;
        return fresh;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  private async load(): Promise<Snapshot> {
    const [rows, presets] = await Promise.all([
      this.ctx.db
        .selectFrom('model_connections')
        .selectAll()
        .where('owner_id', 'is', null)
        .where('enabled', '=', 1)
        .orderBy('created_at')
        .orderBy('id')
        .execute(),
      this.ctx.db.selectFrom('model_presets').selectAll().orderBy('created_at').orderBy('id').execute(),
    ]);
    const connections: OpenConnection[] = [];
    const broken: string[] = [];
    for (const r of rows) {
      try {
        connections.push(this.store.open(r));
      } catch (e) {
        broken.push(r.id);
        this.ctx.log.error({ connection_id: r.id, err: (e as Error).message }, 'Connection secrets cannot be opened');
      }
    }
    return { at: Date.now(), connections, broken, presets: new Map(presets.map((p) => [p.id, p])) };
  }

  /**
   * Models of the admin connections, first connection wins on a clash. Connections never asked
   * before are asked now (bounded by the discovery timeout); `refresh` asks every one again.
   */
  async connectionModels(opts: { refresh?: boolean } = {}): Promise<Map<string, ConnectionModel>> {
    const snap = await this.snapshot();
    await Promise.all(
      snap.connections.map((c) =>
        opts.refresh || this.discovery.peek(c) === null ? this.discovery.ids(c, opts) : Promise.resolve(),
      ),
    );
    return this.indexOf(snap);
  }

  private index: { snap: Snapshot; changes: number; map: Map<string, ConnectionModel> } | null = null;

  /** Client id → connection model, rebuilt only when the snapshot or a discovered list changed. */
  private indexOf(snap: Snapshot): Map<string, ConnectionModel> {
    const cached = this.index;
    if (cached && cached.snap === snap && cached.changes === this.discovery.changes) return cached.map;
    const changes = this.discovery.changes;
    const out = new Map<string, ConnectionModel>();
    for (const c of snap.connections) {
      for (const up of this.discovery.peek(c) ?? []) {
        const id = clientModelId(c, up);
        if (!out.has(id)) out.set(id, { id, upstreamId: up, connection: c });
      }
    }
    this.index = { snap, changes, map: out };
    return out;
  }

  /** One connection model by client id (asks connections never discovered, once). */
  async findConnectionModel(id: string): Promise<ConnectionModel | undefined> {
    const snap = await this.snapshot();
    let hit = this.indexOf(snap).get(id);
    if (hit) return hit;
    const unknown = snap.connections.filter((c) => this.discovery.peek(c) === null);
    if (unknown.length === 0) return undefined;
    await Promise.all(unknown.map((c) => this.discovery.ids(c)));
    hit = this.indexOf(snap).get(id);
    return hit;
  }

  async preset(id: string): Promise<PresetRow | undefined> {
    return (await this.snapshot()).presets.get(id);
  }

  async presets(): Promise<PresetRow[]> {
    return [...(await this.snapshot()).presets.values()];
  }

  /** A user's own direct connection model (null when the id is not a direct id). */
  async findDirectModel(id: string, userId: string): Promise<ConnectionModel | null | undefined> {
    if (!id.startsWith(DIRECT_PREFIX)) return null;
    assertDirectAllowed(this.ctx.config);
    const rest = id.slice(DIRECT_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) return undefined;
    const connId = rest.slice(0, slash);
    const upstreamId = rest.slice(slash + 1);
    const row = await this.ctx.db
      .selectFrom('model_connections')
      .selectAll()
      .where('id', '=', connId)
      .where('owner_id', '=', userId)
      .where('enabled', '=', 1)
      .executeTakeFirst();
    if (!row) return undefined;
    const connection = this.store.open(row);
    if (connection.modelIds.length && !connection.modelIds.includes(upstreamId)) return undefined;
    return { id, upstreamId, connection };
  }

  /**
   * Follows a model id through its presets to the connection model that will answer. Throws
   * `model_not_found` for an unknown id, a missing base or a chain that loops or is too deep.
   * Inactive presets are not dispatched.
   */
  async resolve(id: string, userId: string): Promise<Resolved> {
    if (id.startsWith(DIRECT_PREFIX)) {
      const direct = await this.findDirectModel(id, userId);
      if (!direct) throw modelNotFound(id);
      return { requested: id, chain: [], base: direct, ids: [id] };
    }
    // One snapshot for the whole chain (no promise per hop while it is fresh).
    const fresh = this.snap && Date.now() - this.snap.at < CATALOG_TTL_MS ? this.snap : null;
    const snap = fresh ?? (await this.snapshot());
    const chain: PresetRow[] = [];
    const seen = new Set<string>();
    let cur = id;
    for (;;) {
      const p = snap.presets.get(cur);
      if (!p) break;
      if (seen.has(cur) || chain.length >= MAX_PRESET_DEPTH) throw modelNotFound(id);
      seen.add(cur);
      if (p.is_active !== 1) throw modelNotFound(id);
      chain.push(p);
      cur = p.base_model_id;
    }
    if (cur.startsWith(DIRECT_PREFIX)) throw modelNotFound(id);
    const base = this.indexOf(snap).get(cur) ?? (await this.findConnectionModel(cur));
    if (!base) throw modelNotFound(id);
    return { requested: id, chain, base, ids: [...chain.map((p) => p.id), base.id] };
  }

  /** The ids a preset chain would touch, for validation at create/update time (no dispatch). */
  async chainIds(baseId: string): Promise<string[]> {
    const ids: string[] = [];
    const seen = new Set<string>();
    let cur = baseId;
    for (;;) {
      if (seen.has(cur) || ids.length > MAX_PRESET_DEPTH)
        throw new AppError('validation_failed', 'The preset chain loops or is too deep');
      seen.add(cur);
      ids.push(cur);
      const p = await this.preset(cur);
      if (!p) break;
      cur = p.base_model_id;
    }
    return ids;
  }
}

/** The same answer whether the model is unknown, inactive, broken or not granted: existence is not revealed. */
export function modelNotFound(id: string): AppError {
  return new AppError(
    'model_not_found',
    `The model ${JSON.stringify(id.slice(0, 256))} does not exist or you do not have access to it`,
  );
}
