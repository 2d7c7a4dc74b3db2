import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, matrix, type TestApp } from '../harness.js';

describeMatrix('health and public config', matrix({ full: true }), (b) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp(b);
  });
  afterAll(async () => app?.close());

  it('GET /health answers ok without auth', async () => {
    const r = await call(app, 'GET', '/health');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
  });

  it('GET /api/config exposes only the allowlisted fields', async () => {
    const r = await call(app, 'GET', '/api/config');
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual([
      'features',
      'iframe_csp',
      'ldap',
      'name',
      'oauth_providers',
      'onboarding',
      'password_hint',
      'version',
    ]);
    expect(Object.keys(r.body.features).sort()).toEqual([
      'code_execution_engine',
      'code_interpreter_engine',
      'enable_code_execution',
      'enable_code_interpreter',
      'enable_direct_connections',
      'enable_login_form',
      'enable_password_auth',
      'enable_password_change_form',
      'enable_signup',
    ]);
    expect(r.body.onboarding).toBe(true);
    expect(r.text).not.toContain(app.shared.secret);
  });
});
