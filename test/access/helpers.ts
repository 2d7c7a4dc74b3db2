import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { call, createTestApp, makeUser, signup, type Backend, type Res, type TestApp } from '../harness.js';

export interface World {
  app: TestApp;
  admin: { token: string; id: string };
}

/** An app with its first admin (signed up through the API). */
export async function world(b: Backend, env: Record<string, string> = {}): Promise<World> {
  const app = await createTestApp(b, { env });
  const a = await signup(app);
  return { app, admin: { token: a.token, id: a.user.id } };
}

export async function user(w: World, role: 'user' | 'admin' | 'pending' = 'user') {
  const u = await makeUser(w.app, { role });
  return { id: u.user.id, token: u.token, email: u.user.email };
}

export function expectError(r: Res, status: number, code: string) {
  expect({ status: r.status, code: r.body?.error?.code }, r.text).toEqual({ status, code });
}

export async function createGroup(
  w: World,
  name: string,
  opts: { members?: string[]; permissions?: Record<string, Record<string, boolean>> } = {},
): Promise<string> {
  const r = await call(w.app, 'POST', '/api/v1/groups', {
    token: w.admin.token,
    body: { name, ...(opts.permissions ? { permissions: opts.permissions } : {}) },
  });
  expect(r.status, r.text).toBe(201);
  if (opts.members?.length) {
    const m = await call(w.app, 'POST', `/api/v1/groups/${r.body.id}/members`, {
      token: w.admin.token,
      body: { user_ids: opts.members },
    });
    expect(m.status, m.text).toBe(200);
  }
  return r.body.id as string;
}

export async function createKey(w: World, token: string, body: Record<string, unknown> = {}) {
  const r = await call(w.app, 'POST', '/api/v1/api-keys', { token, body: { name: 'k', ...body } });
  expect(r.status, r.text).toBe(201);
  return r.body as { key: string; id: string; [k: string]: unknown };
}

/**
 * A GET over a real socket: unlike inject, the path reaches the server exactly as written
 * (`..` and `.` segments are not resolved by the client).
 */
export async function rawGet(app: TestApp, path: string, token: string): Promise<{ status: number; body: string }> {
  if (!app.app.server.listening) await app.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.app.server.address() as AddressInfo).port;
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: '127.0.0.1', port, path, method: 'GET', headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    r.on('error', reject);
    r.end();
  });
}
