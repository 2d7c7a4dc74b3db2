import type { FastifyInstance } from 'fastify';
import type { Config, SettingName } from '../../config/index.js';
import { settings } from '../../config/index.js';
import type { AppContext } from '../../context.js';
import { route } from '../../platform/http/route.js';

/**
 * The admin settings view: every setting with its effective value and where that value comes from
 * (`env`, `.env`, `entry-default`, `default`). Settings are read from the environment at start, so
 * the view is read-only. Secret settings (`secret: true` in their definition) never leave the
 * server: `"********"` when set, `null` when unset. Credentials written into any other value as a
 * URL's user-info part (`scheme://user:password@host`) are masked the same way.
 */
export const MASK = '********';

export interface PresentedSetting {
  name: string;
  area: string;
  value: unknown;
  default: string | null;
  source: Config['sources'][SettingName];
  secret: boolean;
  allowed: string;
  description: string;
}

function isUnset(v: unknown): boolean {
  return v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0);
}

/** Masks `user:password@` in URLs anywhere in the text. */
export function maskUrlCredentials(text: string): string {
  return text.replace(/(\/\/)[^/@\s]+@/g, `$1${MASK}@`);
}

function plain(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return maskUrlCredentials(v);
  if (typeof v === 'number' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof RegExp) return v.source;
  if (typeof v === 'object') return maskUrlCredentials(JSON.stringify(v));
  return maskUrlCredentials(String(v));
}

export function presentSettings(config: Config): PresentedSetting[] {
  return (Object.keys(settings) as SettingName[]).map((name) => {
    const def = settings[name];
    const secret = def.secret === true;
    const raw: unknown = config[name];
    const value = secret ? (isUnset(raw) ? null : MASK) : plain(raw);
    const dflt = def.default === null ? null : secret ? MASK : maskUrlCredentials(def.default);
    return {
      name,
      area: def.area,
      value,
      default: dflt,
      source: config.sources[name],
      secret,
      allowed: def.allowed,
      description: def.description,
    };
  });
}

export function registerAdminSettingsRoutes(app: FastifyInstance, ctx: AppContext) {
  route(app, {
    method: 'GET',
    url: '/api/v1/admin/settings',
    auth: 'admin',
    policy: 'admin (read-only view; secrets masked)',
    tags: ['admin'],
    summary: 'Every setting with its effective value and source (read-only; settings come from the environment)',
    handler: async () => ({ editable: false, items: presentSettings(ctx.config) }),
  });
}
