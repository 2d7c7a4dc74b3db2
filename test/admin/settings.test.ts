import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, settings } from '../../server/config/index.js';
import { MASK, presentSettings } from '../../server/modules/admin-settings/routes.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

/** Secret values set in the environment: none may appear anywhere in the response. */
const SECRETS = {
  OAUTH_CLIENT_SECRET: 'oidc-client-secret-7f3a9c',
  GOOGLE_CLIENT_SECRET: 'google-secret-51be02',
  MICROSOFT_CLIENT_SECRET: 'microsoft-secret-88d1e4',
  GITHUB_CLIENT_SECRET: 'github-secret-0c4d2a',
  LDAP_APP_PASSWORD: 'ldap-bind-password-19ab',
  SCIM_TOKEN: 'scim-bearer-token-6e6e6e6e6e6e6e6e6e6e6e6e',
};

describeMatrix('admin settings view', matrix(), (b) => {
  let app: TestApp;
  let admin: { token: string };
  let user: { token: string };

  beforeAll(async () => {
    app = await createTestApp(b, {
      env: {
        ...SECRETS,
        OAUTH_CLIENT_ID: 'hridaai-test',
        OPENID_PROVIDER_URL: 'http://127.0.0.1:9/',
        GOOGLE_CLIENT_ID: 'google-id',
        MICROSOFT_CLIENT_ID: 'microsoft-id',
        MICROSOFT_CLIENT_TENANT_ID: '3f2504e0-4f89-11d3-9a0c-0305e82c3301',
        GITHUB_CLIENT_ID: 'github-id',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-user:otlp-password-2b2b@127.0.0.1:4318',
        ENABLE_COMMUNITY_SHARING: 'false',
        JWT_EXPIRES_IN: '2h',
      },
    });
    admin = await signup(app);
    user = await makeUser(app);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('is for admins only: a user gets 403, an anonymous caller 401', async () => {
    expect((await call(app, 'GET', '/api/v1/admin/settings')).status).toBe(401);
    const u = await call(app, 'GET', '/api/v1/admin/settings', { token: user.token });
    expect(u.status).toBe(403);
    expect(u.text).not.toContain('HRIDAAI_SECRET_KEY');
  });

  it('lists every setting with its value, default, source, allowed values and description', async () => {
    const r = await call(app, 'GET', '/api/v1/admin/settings', { token: admin.token });
    expect(r.status, r.text).toBe(200);
    expect(r.body.editable).toBe(false);
    const items = r.body.items as {
      name: string;
      area: string;
      value: unknown;
      default: string | null;
      source: string;
      allowed: string;
      description: string;
      secret: boolean;
    }[];
    expect(items.map((i) => i.name).sort()).toEqual(Object.keys(settings).sort());
    const by = new Map(items.map((i) => [i.name, i]));
    for (const i of items) {
      expect(typeof i.area, i.name).toBe('string');
      expect(i.description.length, i.name).toBeGreaterThan(0);
      expect(['env', '.env', 'default', 'entry-default'], i.name).toContain(i.source);
    }
    expect(by.get('ENABLE_COMMUNITY_SHARING')).toMatchObject({ value: false, source: 'env', secret: false });
    expect(by.get('ENABLE_COMMUNITY_SHARING')?.default).toBe(settings.ENABLE_COMMUNITY_SHARING.default);
    expect(by.get('JWT_EXPIRES_IN')?.source).toBe('env');
    expect(by.get('OAUTH_CLIENT_ID')).toMatchObject({ value: 'hridaai-test', source: 'env' });
    expect(by.get('ENABLE_ADMIN_EXPORT')?.source).toBe('default');
    // secrets: masked when set, null when unset
    expect(by.get('HRIDAAI_SECRET_KEY')).toMatchObject({ value: MASK, source: 'env', secret: true });
    for (const name of Object.keys(SECRETS)) expect(by.get(name), name).toMatchObject({ value: MASK, secret: true });
    expect(by.get('HRIDAAI_SECRET_KEY_PREVIOUS')).toMatchObject({ value: null, secret: true });
    expect(by.get('HRIDAAI_ADMIN_PASSWORD')).toMatchObject({ value: null, secret: true });
    // credentials written into a URL are masked even where the setting is not a secret
    expect(by.get('OTEL_EXPORTER_OTLP_ENDPOINT')?.value).toBe(`http://${MASK}@127.0.0.1:4318`);
  });

  it('never returns a secret value that is set in the environment', async () => {
    const r = await call(app, 'GET', '/api/v1/admin/settings', { token: admin.token });
    const text = r.text;
    const secrets = [...Object.values(SECRETS), app.env.HRIDAAI_SECRET_KEY!, 'otlp-password-2b2b', 'otel-user'];
    if (app.env.REDIS_URL) secrets.push(app.env.REDIS_URL);
    const found = secrets.filter((s) => text.includes(s) || text.includes(JSON.stringify(s).slice(1, -1)));
    expect(found).toEqual([]);
  });
});

describe('admin settings presenter', () => {
  it('masks database and Redis credentials, admin password and every secret-like setting', () => {
    const config = loadConfig({
      ENV: 'test',
      DATA_DIR: '/tmp/hridaai-settings-view',
      HRIDAAI_SECRET_KEY: 'root-secret-key-value-0123456789abcdef',
      DATABASE_URL: 'postgresql://hridaai:db-password-4c4c@127.0.0.1:5432/hridaai',
      REDIS_URL: 'redis://:redis-password-9d9d@127.0.0.1:6379/0',
      HRIDAAI_ADMIN_EMAIL: 'root@example.com',
      HRIDAAI_ADMIN_PASSWORD: 'admin-password-3e3e',
      SCIM_TOKEN: 'scim-token-abcdefabcdefabcdefabcdef',
    });
    const items = presentSettings(config);
    const text = JSON.stringify(items);
    for (const s of [
      'root-secret-key-value',
      'db-password-4c4c',
      'redis-password-9d9d',
      'admin-password-3e3e',
      'scim-token-abcdef',
      'hridaai:db',
    ])
      expect(text).not.toContain(s);
    const by = new Map(items.map((i) => [i.name, i]));
    expect(by.get('DATABASE_URL')).toMatchObject({ value: MASK, source: 'env' });
    expect(by.get('REDIS_URL')).toMatchObject({ value: MASK, source: 'env' });
    expect(by.get('HRIDAAI_ADMIN_EMAIL')?.value).toBe('root@example.com');
  });

  it('flags every setting whose name says it holds a secret', () => {
    const secretLike = /(SECRET|PASSWORD|TOKEN)(_PREVIOUS)?$|SECRET_KEY|^DATABASE_URL$|^REDIS_URL$/;
    const unflagged = Object.entries(settings)
      .filter(([name]) => secretLike.test(name))
      .filter(([, def]) => (def as { secret?: boolean }).secret !== true)
      .map(([name]) => name);
    expect(unflagged).toEqual([]);
  });
});
