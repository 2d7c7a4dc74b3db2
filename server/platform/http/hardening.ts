import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../config/index.js';
import { AppError } from './errors.js';

/** The security headers the admin opted into, computed once at start (none by default). */
export function securityHeaders(config: Config): Record<string, string> {
  const h: Record<string, string> = {};
  const set = (name: string, v: string | null) => {
    if (v) h[name] = v;
  };
  set('strict-transport-security', config.HSTS);
  set('x-frame-options', config.XFRAME_OPTIONS);
  set('x-content-type-options', config.XCONTENT_TYPE);
  set('referrer-policy', config.REFERRER_POLICY);
  set('permissions-policy', config.PERMISSIONS_POLICY);
  set('content-security-policy', config.CONTENT_SECURITY_POLICY);
  set('content-security-policy-report-only', config.CONTENT_SECURITY_POLICY_REPORT_ONLY);
  set('cross-origin-embedder-policy', config.CROSS_ORIGIN_EMBEDDER_POLICY);
  set('cross-origin-opener-policy', config.CROSS_ORIGIN_OPENER_POLICY);
  set('cross-origin-resource-policy', config.CROSS_ORIGIN_RESOURCE_POLICY);
  set('reporting-endpoints', config.REPORTING_ENDPOINTS);
  return h;
}

export async function registerCors(app: FastifyInstance, config: Config): Promise<void> {
  const origins = config.cors.origins;
  if (origins === '*') {
    // Any origin, never with credentials: a page elsewhere cannot ride the user's cookie.
    await app.register(cors, { origin: '*', credentials: false, maxAge: 600 });
    return;
  }
  const allowed = new Set(origins);
  await app.register(cors, {
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    maxAge: 600,
  });
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The origin of this request as the browser sees it (scheme and host via trusted proxies only). */
export function requestOrigin(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}`.toLowerCase();
}

/**
 * CSRF: an unsafe request that carries the session cookie (or would set one) must come from our own
 * origin or an origin listed in CORS_ALLOW_ORIGIN. `Origin: null` is always foreign. Without an
 * Origin header, a `Sec-Fetch-Site: cross-site` marker is refused too.
 */
export function checkCsrf(req: FastifyRequest, config: Config, cookieAuthenticated: boolean): void {
  if (!UNSAFE.has(req.method)) return;
  if (!cookieAuthenticated && !req.routeOptions.config.setsSession) return;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const o = origin.toLowerCase();
    if (o === requestOrigin(req)) return;
    if (config.cors.origins !== '*' && config.cors.origins.some((a) => a.toLowerCase() === o)) return;
    throw new AppError('csrf_origin_mismatch', 'Cross-origin request refused: the Origin is not allowed');
  }
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site')
    throw new AppError('csrf_origin_mismatch', 'Cross-site request refused (Sec-Fetch-Site: cross-site)');
}
