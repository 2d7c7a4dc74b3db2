import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import { createLimiterStore, type LimiterStore } from '../../platform/rate-limit/index.js';
import { createSecretBox, type SecretBox } from '../../platform/security/secretbox.js';
import { Discovery } from '../connections/discovery.js';
import { ConnectionStore } from '../connections/service.js';
import { Transports } from '../connections/transport.js';
import { ModelAccess } from '../models/access.js';
import { ModelCatalog } from '../models/catalog.js';
import { LimitService } from './limits.js';
import { UsageRecorder } from './usage.js';

/**
 * The gateway's long-lived parts, one set per application instance: sealed-secret store, upstream
 * transports (keep-alive pools), model discovery cache, the catalog of models, the access checks,
 * the limiter and the usage ledger.
 */
export interface GatewayServices {
  box: SecretBox;
  store: ConnectionStore;
  transports: Transports;
  discovery: Discovery;
  catalog: ModelCatalog;
  access: ModelAccess;
  limiter: LimiterStore;
  limits: LimitService;
  usage: UsageRecorder;
  /** Drops cached connections/presets here and on every instance. */
  changed(connectionId?: string): Promise<void>;
}

const registry = new WeakMap<AppContext, GatewayServices>();
const hooked = new WeakSet<FastifyInstance>();

export function gatewayServices(ctx: AppContext): GatewayServices {
  let s = registry.get(ctx);
  if (s) return s;
  const box = createSecretBox(ctx.keyring);
  const store = new ConnectionStore(box);
  const transports = new Transports(ctx.config);
  const discovery = new Discovery(transports, () => ctx.config.MODEL_DISCOVERY_CACHE_TTL * 1000, ctx.log);
  const catalog = new ModelCatalog(ctx, store, discovery);
  const usage = new UsageRecorder(ctx.db, ctx.log, ctx.dbKind);
  const limiter = createLimiterStore(ctx.redis);
  const limits = new LimitService(ctx, limiter, () => usage.flush());
  s = {
    box,
    store,
    transports,
    discovery,
    catalog,
    access: new ModelAccess(ctx),
    limiter,
    limits,
    usage,
    async changed(connectionId) {
      if (connectionId) {
        transports.forget(connectionId);
        discovery.forget(connectionId);
      }
      await catalog.invalidate();
    },
  };
  registry.set(ctx, s);
  return s;
}

/** Starts the cross-instance invalidation and closes pools and flushes usage when the app closes. */
export function attachGateway(app: FastifyInstance, ctx: AppContext): GatewayServices {
  const s = gatewayServices(ctx);
  if (hooked.has(app)) return s;
  hooked.add(app);
  app.addHook('onReady', async () => {
    await s.catalog.start();
    await s.limits.start();
  });
  app.addHook('onClose', async () => {
    await s.usage.flush();
    await s.transports.close();
    await s.limiter.close();
  });
  return s;
}
