import cookie from '@fastify/cookie';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from './config/index.js';
import type { AppContext } from './context.js';
import { checkPasswordRules, hasAnyUser, provisionUser } from './modules/auth/accounts.js';
import { authenticateRequest } from './modules/auth/authenticate.js';
import { registerAuthRoutes } from './modules/auth/routes.js';
import { SessionService } from './modules/auth/sessions.js';
import { registerUserRoutes } from './modules/users/routes.js';
import { publicSsoConfig, registerSsoRoutes } from './modules/sso/routes.js';
import { registerScimRoutes } from './modules/scim/routes.js';
import { registerAccountSecurityRoutes } from './modules/account-security/routes.js';
import { AccountSecurity, checkAccountSecurityConfig } from './modules/account-security/service.js';
import { registerChatRoutes } from './modules/chats/routes.js';
import { registerMemoryRoutes } from './modules/memories/routes.js';
import { registerPrivacyRoutes } from './modules/privacy/routes.js';
import { registerConnectionRoutes } from './modules/connections/routes.js';
import { registerModelRoutes } from './modules/models/routes.js';
import { registerGatewayRoutes } from './modules/gateway/routes.js';
import { registerFileRoutes } from './modules/files/routes.js';
import { registerProfileImageRoutes } from './modules/profile-images/routes.js';
import { registerKnowledgeRoutes } from './modules/knowledge/routes.js';
import { registerAccessRoutes } from './modules/access/routes.js';
import { registerGroupRoutes } from './modules/groups/routes.js';
import { registerApiKeyRoutes } from './modules/api-keys/routes.js';
import { registerWebUi } from './modules/web/routes.js';
import { codeFeatures, registerCodeRoutes } from './modules/code/routes.js';
import { registerAuditRoutes } from './modules/audit/routes.js';
import { registerAdminSettingsRoutes } from './modules/admin-settings/routes.js';
import { registerPromptRoutes } from './modules/prompts/routes.js';
import { createAuditService } from './platform/audit/service.js';
import { createObservability } from './platform/observability/index.js';
import { openDatabase, type DatabaseHandle } from './platform/db/index.js';
import { AppError, errorBody } from './platform/http/errors.js';
import { registerCors, securityHeaders } from './platform/http/hardening.js';
import { route } from './platform/http/route.js';
import { accessLogger, createLogger, redactUrl } from './platform/log/logger.js';
import { connectRedis, type RedisHandle } from './platform/redis/index.js';
import { createKeyring, resolveSecretKey } from './platform/security/keyring.js';
import { hashPassword, makeDummyHash } from './platform/security/passwords.js';

export interface BuiltApp {
  app: FastifyInstance;
  ctx: AppContext;
  close(): Promise<void>;
}

export interface BuildOptions {
  logger?: Logger;
  /** Skip migrations (the CLI's `serve --no-migrate`). */
  migrate?: boolean;
}

function trustProxyOption(config: Config): boolean | string[] {
  return config.FORWARDED_ALLOW_IPS === '*' ? true : config.FORWARDED_ALLOW_IPS;
}

/** Builds a ready-to-listen HridaAI server: storage opened and migrated, routes registered. */
export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<BuiltApp> {
  const log = opts.logger ?? createLogger(config);
  for (const w of config.warnings) log.warn(w);
  checkAccountSecurityConfig(config, log);

  const { secret, source } = resolveSecretKey(config.HRIDAAI_SECRET_KEY, config.dataDir);
  if (source === 'generated') log.info('Generated a new secret key in DATA_DIR/.hridaai_secret_key');
  const keyring = createKeyring(secret, config.HRIDAAI_SECRET_KEY_PREVIOUS);

  const dbh: DatabaseHandle = openDatabase(config);
  let redis: RedisHandle | null = null;
  try {
    if (opts.migrate !== false) {
      const applied = await dbh.migrate();
      if (applied.length) log.info({ migrations: applied }, 'Database migrations applied');
    }
    if (config.REDIS_URL) redis = await connectRedis(config.REDIS_URL, config.REDIS_KEY_PREFIX ?? 'hridaai:', log);
  } catch (e) {
    await dbh.close().catch(() => undefined);
    throw e;
  }

  const obs = createObservability(config, log);
  const sessions = new SessionService(dbh.db, config, keyring, redis, log);
  const audit = createAuditService(config, dbh.db, dbh.kind, log, { registry: obs.registry });
  await sessions.start();
  const ctx: AppContext = {
    config,
    db: dbh.db,
    dbKind: dbh.kind,
    keyring,
    redis,
    sessions,
    log,
    obs,
    audit,
    accountSecurity: new AccountSecurity(() => ctx),
    dummyHash: await makeDummyHash(config.PASSWORD_HASH_ROUNDS),
  };

  await bootstrapAdmin(ctx);

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    trustProxy: trustProxyOption(config),
    bodyLimit: config.MAX_JSON_BODY_SIZE,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    return503OnClosing: true,
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
  });
  // zod validates in the route wrapper; JSON schemas exist only for the OpenAPI document.
  app.setValidatorCompiler(() => () => true);
  app.decorateRequest('auth', null);
  obs.instrument(app);

  // Every route must declare its auth kind and policy (see platform/http/route.ts).
  app.addHook('onRoute', (r) => {
    const c = r.config as { auth?: string; policy?: string } | undefined;
    const internal =
      r.url.startsWith('/docs') || r.url === '/openapi.json' || (r.method === 'OPTIONS' && r.url === '*');
    if (!internal && (!c?.auth || !c?.policy))
      throw new Error(`Route ${String(r.method)} ${r.url} does not declare its auth kind and policy`);
  });

  // One log line per request, after the response; URLs are logged with secret query values redacted.
  // Hooks on every request are callback-style (no promise per hook and request).
  const access = accessLogger(log);
  app.addHook('onResponse', (req, reply, done) => {
    access(
      {
        reqId: req.id,
        method: req.method,
        url: redactUrl(req.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        ip: req.ip,
      },
      req.log,
    );
    done();
  });

  const headers = securityHeaders(config);
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    for (const k in headers) reply.header(k, headers[k]!);
    done();
  });

  await app.register(cookie);
  await registerCors(app, config);

  if (config.ENV !== 'prod') {
    // The API document and its UI exist outside production only; loaded only then.
    const { default: swagger } = await import('@fastify/swagger');
    const { default: swaggerUi } = await import('@fastify/swagger-ui');
    await app.register(swagger, {
      openapi: { info: { title: 'HridaAI API', version: '0.1.0' } },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { config: { auth: 'none', policy: 'public:openapi' } }, async () => app.swagger());
  }

  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.config.auth === undefined) return; // not found / internal docs
    if (req.url.startsWith('/docs')) return;
    await authenticateRequest(ctx, req);
  });

  app.setErrorHandler((err: FastifyError | AppError | Error, req, reply) => {
    if (err instanceof AppError) {
      if (err.status >= 500) req.log.error({ err }, 'request failed');
      return reply.code(err.status).send(errorBody(err.code, err.message, err.details));
    }
    const fe = err as FastifyError;
    if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (fe.statusCode === 400 && err instanceof SyntaxError))
      return reply.code(400).send(errorBody('invalid_json', 'The request body is not valid JSON'));
    if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
      return reply.code(400).send(errorBody('invalid_json', 'The request body is empty but Content-Type is JSON'));
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.code(413).send(errorBody('body_too_large', 'The request body is too large'));
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return reply.code(415).send(errorBody('unsupported_media_type', 'Send the request body as application/json'));
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
      return reply
        .code(fe.statusCode)
        .send(errorBody('invalid_request', fe.message.replace(/^FST_[A-Z_]+:\s*/, '').slice(0, 200)));
    if (fe.code === 'FST_ERR_REP_INVALID_PAYLOAD_TYPE' || !(err instanceof AppError)) {
      const pgTimeout = /timeout exceeded when trying to connect/i.test(err.message);
      req.log.error({ err }, 'unhandled error');
      if (pgTimeout)
        return reply
          .code(503)
          .send(errorBody('service_unavailable', 'The database is busy; try again', { request_id: req.id }));
    }
    return reply
      .code(500)
      .send(
        errorBody('internal_error', 'Internal error; quote the request id to an administrator', { request_id: req.id }),
      );
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody('not_found', `No route ${req.method} ${req.url.split('?')[0]}`));
  });

  // --- system routes
  route(app, {
    method: 'GET',
    url: '/health',
    auth: 'none',
    policy: 'public:health',
    tags: ['system'],
    handler: async (_req, reply) => {
      if (!(await dbh.ping())) {
        reply.code(503);
        return { status: 'unavailable' };
      }
      return { status: 'ok' };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/config',
    auth: 'none',
    policy: 'public:config (explicit allowlist)',
    tags: ['system'],
    query: z.object({}).passthrough(),
    handler: async () => {
      const onboarding = !(await hasAnyUser(ctx.db));
      return {
        name: 'HridaAI',
        version: '0.1.0',
        onboarding,
        features: {
          enable_login_form: config.ENABLE_LOGIN_FORM,
          enable_password_auth: config.ENABLE_PASSWORD_AUTH,
          enable_password_change_form: config.ENABLE_PASSWORD_CHANGE_FORM,
          enable_direct_connections: config.ENABLE_DIRECT_CONNECTIONS && !config.OFFLINE_MODE,
          enable_signup:
            onboarding || (config.ENABLE_SIGNUP && config.ENABLE_LOGIN_FORM && config.ENABLE_PASSWORD_AUTH),
          ...codeFeatures(config),
        },
        password_hint: config.ENABLE_PASSWORD_VALIDATION ? config.PASSWORD_VALIDATION_HINT : '',
        ...publicSsoConfig(config),
        iframe_csp: config.IFRAME_CSP,
      };
    },
  });

  route(app, {
    method: 'GET',
    url: '/api/v1/metrics',
    auth: 'admin',
    policy: 'admin:metrics',
    tags: ['system'],
    summary: 'Prometheus metrics (ENABLE_METRICS)',
    handler: async (_req, reply) => {
      if (!config.ENABLE_METRICS) throw new AppError('not_found', 'Metrics are disabled (ENABLE_METRICS=false)');
      reply.header('content-type', obs.registry.contentType);
      return obs.registry.metrics();
    },
  });

  registerAuthRoutes(app, ctx);
  registerUserRoutes(app, ctx);
  registerSsoRoutes(app, ctx);
  registerScimRoutes(app, ctx);
  registerAccountSecurityRoutes(app, ctx);
  registerChatRoutes(app, ctx);
  registerMemoryRoutes(app, ctx);
  registerPrivacyRoutes(app, ctx);
  registerConnectionRoutes(app, ctx);
  registerModelRoutes(app, ctx);
  registerGatewayRoutes(app, ctx);
  registerFileRoutes(app, ctx);
  registerProfileImageRoutes(app, ctx);
  registerKnowledgeRoutes(app, ctx);
  registerAccessRoutes(app, ctx);
  registerGroupRoutes(app, ctx);
  await registerApiKeyRoutes(app, ctx);
  registerAuditRoutes(app, ctx);
  registerAdminSettingsRoutes(app, ctx);
  registerPromptRoutes(app, ctx);
  registerCodeRoutes(app, ctx);
  audit.install(app);
  await registerWebUi(app, ctx);

  await app.ready();

  return {
    app,
    ctx,
    async close() {
      await app.close();
      await obs.close();
      if (redis) await redis.close();
      await dbh.close();
    },
  };
}

/** HRIDAAI_ADMIN_*: creates the admin at start, only when no users exist. */
async function bootstrapAdmin(ctx: AppContext): Promise<void> {
  const { config } = ctx;
  if (!config.HRIDAAI_ADMIN_EMAIL || !config.HRIDAAI_ADMIN_PASSWORD) return;
  if (await hasAnyUser(ctx.db)) return;
  checkPasswordRules(config, config.HRIDAAI_ADMIN_PASSWORD);
  const hash = await hashPassword(config.HRIDAAI_ADMIN_PASSWORD, config.PASSWORD_HASH_ROUNDS);
  try {
    const user = await ctx.db.transaction().execute(async (trx) => {
      const u = await provisionUser(trx, {
        email: config.HRIDAAI_ADMIN_EMAIL!,
        name: config.HRIDAAI_ADMIN_NAME ?? 'Admin',
        passwordHash: hash,
        provider: 'password',
        subject: null,
        roleIfNotFirst: null,
      });
      await ctx.audit.record(trx, {
        action: 'user.created',
        actorId: null,
        resourceType: 'user',
        resourceId: u.id,
        after: { email: u.email, name: u.name, role: u.role },
        details: { source: 'HRIDAAI_ADMIN_EMAIL' },
      });
      return u;
    });
    ctx.log.info({ user_id: user.id }, 'Created the admin account from HRIDAAI_ADMIN_EMAIL');
  } catch (e) {
    // Another instance created the first account at the same moment: nothing to do.
    if (e instanceof AppError && (e.code === 'signup_disabled' || e.code === 'email_taken')) return;
    throw e;
  }
}
