import type { AddressInfo } from 'node:net';
import { call, createTestApp, makeUser, signup, type Backend, type TestApp } from '../harness.js';
import { startOllamaUpstream, startOpenAIUpstream, type MockUpstream } from '../fixtures/upstream.js';

/**
 * A HridaAI instance listening on 127.0.0.1 (so the official `openai` client can talk to it over
 * HTTP), an OpenAI-compatible mock upstream and an Ollama-shaped one, an admin and a connection to
 * each upstream.
 */
export interface GatewayEnv {
  app: TestApp;
  /** http://127.0.0.1:<port> of HridaAI */
  url: string;
  admin: { token: string; id: string };
  openai: MockUpstream;
  ollama: MockUpstream;
  openaiConnId: string;
  ollamaConnId: string;
  close(): Promise<void>;
}

export const UPSTREAM_KEY = 'sk-upstream-secret-0123456789';

export async function gatewayEnv(
  b: Backend,
  opts: { env?: Record<string, string>; listen?: boolean; connections?: boolean } = {},
): Promise<GatewayEnv> {
  const openai = await startOpenAIUpstream({ apiKey: UPSTREAM_KEY });
  const ollama = await startOllamaUpstream();
  const app = await createTestApp(b, { env: { ENABLE_API_KEYS: 'true', ...opts.env } });
  const admin = await signup(app);
  let url = '';
  if (opts.listen !== false) {
    await app.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`;
  }
  let openaiConnId = '';
  let ollamaConnId = '';
  if (opts.connections !== false) {
    const a = await call(app, 'POST', '/api/v1/connections', {
      token: admin.token,
      body: { type: 'openai', name: 'mock openai', base_url: openai.baseUrl, api_key: UPSTREAM_KEY },
    });
    if (a.status !== 201) throw new Error(`connection: ${a.status} ${a.text}`);
    openaiConnId = a.body.id;
    const o = await call(app, 'POST', '/api/v1/connections', {
      token: admin.token,
      body: { type: 'ollama', name: 'mock ollama', base_url: ollama.baseUrl },
    });
    if (o.status !== 201) throw new Error(`connection: ${o.status} ${o.text}`);
    ollamaConnId = o.body.id;
  }
  return {
    app,
    url,
    admin: { token: admin.token, id: admin.user.id },
    openai,
    ollama,
    openaiConnId,
    ollamaConnId,
    async close() {
      await app.close();
      await openai.close();
      await ollama.close();
    },
  };
}

export async function grantModel(
  env: GatewayEnv,
  modelId: string,
  principal: { user?: string; group?: string },
  permission: 'read' | 'write' = 'read',
): Promise<void> {
  const r = await call(env.app, 'POST', `/api/v1/access/model/${encodeURIComponent(modelId)}/grants`, {
    token: env.admin.token,
    body: {
      principal_type: principal.user ? 'user' : 'group',
      principal_id: principal.user ?? principal.group,
      permission,
    },
  });
  if (r.status !== 201) throw new Error(`grant ${modelId}: ${r.status} ${r.text}`);
}

export async function setLimits(
  env: GatewayEnv,
  scope: 'user' | 'group' | 'key' | 'model',
  subjectId: string,
  values: Partial<
    Record<
      'requests_per_minute' | 'tokens_per_minute' | 'concurrent_requests' | 'tokens_per_day' | 'tokens_per_month',
      number | null
    >
  >,
): Promise<void> {
  const r = await call(env.app, 'PUT', '/api/v1/gateway/limits', {
    token: env.admin.token,
    body: { scope, subject_id: subjectId, ...values },
  });
  if (r.status !== 200) throw new Error(`limits: ${r.status} ${r.text}`);
}

/** A regular user with a session token (and optionally an API key, when the env allows users keys). */
export async function userWithKey(
  env: GatewayEnv,
  opts: { allowedModels?: string[] } = {},
): Promise<{ id: string; token: string; key: string; keyId: string }> {
  const u = await makeUser(env.app, { role: 'user' });
  const r = await call(env.app, 'POST', '/api/v1/api-keys', {
    token: u.token,
    body: { name: 'test', ...(opts.allowedModels ? { allowed_models: opts.allowedModels } : {}) },
  });
  if (r.status !== 201) throw new Error(`api key: ${r.status} ${r.text}`);
  return { id: u.user.id, token: u.token, key: r.body.key, keyId: r.body.id };
}

/** Reads an SSE body into its `data:` payloads. */
export function sseData(text: string): string[] {
  return text
    .split(/\n\n/)
    .map((e) =>
      e
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trim())
        .join('\n'),
    )
    .filter(Boolean);
}

export { call };
