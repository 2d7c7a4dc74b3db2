/**
 * Walks every route the app registers (collected with an onRoute hook installed on the Fastify
 * instance before any route exists) and checks that each one declares an auth kind and a policy,
 * and that the declaration is enforced: no credentials → 401, a user on an admin route → 403, an
 * API key on a session-only route → 403, random ids never reach a 2xx or a 5xx for an outsider.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { call, describeMatrix, SQLITE } from '../harness.js';
import { createKey, user, world, type World } from './helpers.js';

interface Collected {
  method: string;
  url: string;
  config: { auth?: string; policy?: string } | undefined;
}
const collected = vi.hoisted(() => [] as Collected[]);

vi.mock('fastify', async (importOriginal) => {
  const mod = (await importOriginal()) as { default: unknown } & Record<string, unknown>;
  const orig = mod.default as (...a: unknown[]) => FastifyInstance;
  const wrapped = (...args: unknown[]) => {
    const app = orig(...args);
    app.addHook('onRoute', (r) => {
      for (const m of Array.isArray(r.method) ? r.method : [r.method])
        collected.push({ method: String(m), url: r.url, config: r.config as Collected['config'] });
    });
    return app;
  };
  Object.assign(wrapped, orig);
  return { ...mod, default: wrapped, fastify: wrapped };
});

const KINDS = ['none', 'session', 'session-or-key', 'admin'];
const internal = (r: Collected) =>
  r.url.startsWith('/docs') || r.url === '/openapi.json' || (r.method === 'OPTIONS' && r.url === '*');

function concrete(url: string): string {
  return url.replace(/:[A-Za-z_]+/g, () => randomUUID()).replace(/\*/g, 'x');
}

describeMatrix('route walk', [SQLITE], (b) => {
  let w: World;
  let routes: Collected[];
  beforeAll(async () => {
    collected.length = 0;
    w = await world(b);
    const seen = new Set<string>();
    routes = collected.filter((r) => {
      const k = `${r.method} ${r.url}`;
      if (seen.has(k) || r.method === 'HEAD' || internal(r)) return false;
      seen.add(k);
      return true;
    });
  });
  afterAll(async () => w?.app.close());

  it('collects the routes of every module', () => {
    const urls = routes.map((r) => `${r.method} ${r.url}`);
    for (const must of [
      'GET /api/v1/permissions/matrix',
      'GET /api/v1/users/me/permissions',
      'POST /api/v1/api-keys',
      'DELETE /api/v1/api-keys/:id',
      'POST /api/v1/api-keys/:id/rotate',
      'POST /api/v1/groups',
      'POST /api/v1/users/:id/impersonate',
      'POST /api/v1/auths/impersonation/end',
      'GET /api/v1/users',
    ])
      expect(urls).toContain(must);
    expect(routes.length).toBeGreaterThan(30);
  });

  it('every route declares an auth kind and a policy', () => {
    const bad = routes.filter((r) => !KINDS.includes(r.config?.auth ?? '') || !(r.config?.policy ?? '').trim());
    expect(bad.map((r) => `${r.method} ${r.url}`)).toEqual([]);
  });

  it('no credentials → 401 on every route that needs auth', async () => {
    const wrong: string[] = [];
    for (const r of routes.filter((x) => x.config?.auth !== 'none')) {
      const res = await call(w.app, r.method, concrete(r.url), {
        body: ['GET', 'DELETE'].includes(r.method) ? undefined : {},
      });
      if (res.status !== 401) wrong.push(`${r.method} ${r.url} → ${res.status}`);
    }
    expect(wrong).toEqual([]);
  });

  it('a plain user gets 403 on every admin route; an API key gets 403 on every session-only route', async () => {
    const u = await user(w);
    const key = await createKey(w, w.admin.token);
    const wrong: string[] = [];
    for (const r of routes) {
      const body = ['GET', 'DELETE'].includes(r.method) ? undefined : {};
      if (r.config?.auth === 'admin') {
        const res = await call(w.app, r.method, concrete(r.url), { token: u.token, body });
        if (res.status !== 403 || res.body?.error?.code !== 'admin_required')
          wrong.push(`admin ${r.method} ${r.url} → ${res.status}`);
      }
      if (r.config?.auth === 'session') {
        const res = await call(w.app, r.method, concrete(r.url), { token: key.key, body });
        if (res.status !== 403 || res.body?.error?.code !== 'session_required')
          wrong.push(`session ${r.method} ${r.url} → ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('random ids: an outsider never gets a 2xx or a 5xx', async () => {
    const u = await user(w);
    const wrong: string[] = [];
    for (const r of routes.filter((x) => x.url.includes('/:') && x.config?.auth !== 'none')) {
      const res = await call(w.app, r.method, concrete(r.url), {
        token: u.token,
        body: ['GET', 'DELETE'].includes(r.method) ? undefined : {},
      });
      if (res.status < 400 || res.status >= 500)
        wrong.push(`${r.method} ${r.url} → ${res.status} ${res.text.slice(0, 120)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('access-control routes with an id answer 404 for ids that are not the caller’s', async () => {
    const u = await user(w);
    const other = await user(w);
    const g = await call(w.app, 'POST', '/api/v1/groups', { token: w.admin.token, body: { name: 'walk' } });
    const k = await createKey(w, w.admin.token);
    const id = randomUUID();
    const cases: [string, string, string, unknown?][] = [
      // admin on unknown ids
      [w.admin.token, 'GET', `/api/v1/groups/${id}`],
      [w.admin.token, 'PATCH', `/api/v1/groups/${id}`, { name: 'x' }],
      [w.admin.token, 'DELETE', `/api/v1/groups/${id}`],
      [w.admin.token, 'GET', `/api/v1/groups/${id}/members`],
      [w.admin.token, 'POST', `/api/v1/groups/${id}/members`, { user_ids: [u.id] }],
      [w.admin.token, 'POST', `/api/v1/groups/${g.body.id}/members`, { user_ids: [u.id, id] }],
      [w.admin.token, 'DELETE', `/api/v1/groups/${g.body.id}/members/${other.id}`],
      [w.admin.token, 'DELETE', `/api/v1/groups/${id}/members/${u.id}`],
      [w.admin.token, 'POST', `/api/v1/users/${id}/impersonate`, { reason: 'testing ids' }],
      [w.admin.token, 'DELETE', `/api/v1/api-keys/${id}`],
      [w.admin.token, 'POST', `/api/v1/api-keys/${id}/rotate`],
      // a user on someone else's key
      [u.token, 'DELETE', `/api/v1/api-keys/${k.id}`],
      [u.token, 'POST', `/api/v1/api-keys/${k.id}/rotate`],
      // grants on resources the user cannot see
      [u.token, 'GET', `/api/v1/access/model/${id}`],
      [u.token, 'GET', `/api/v1/access/model/${id}/grants`],
      [
        u.token,
        'POST',
        `/api/v1/access/model/${id}/grants`,
        { principal_type: 'user', principal_id: u.id, permission: 'read' },
      ],
      [u.token, 'DELETE', `/api/v1/access/model/${id}/grants/${id}`],
      [w.admin.token, 'DELETE', `/api/v1/access/model/${id}/grants/${id}`],
    ];
    const wrong: string[] = [];
    for (const [token, method, url, body] of cases) {
      const r = await call(w.app, method, url, { token, body });
      if (r.status !== 404 || r.body?.error?.code !== 'not_found')
        wrong.push(`${method} ${url} → ${r.status} ${r.text}`);
    }
    expect(wrong).toEqual([]);
    // the key of the admin was not touched by the user's attempts
    expect((await call(w.app, 'GET', '/api/v1/auths/', { token: k.key })).status).toBe(200);
  });
});
