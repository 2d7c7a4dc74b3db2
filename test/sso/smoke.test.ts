import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestIdp, type TestIdp } from '../fixtures/oidc-provider.js';
import { call, createTestApp, describeMatrix, signup, SQLITE } from '../harness.js';
import { oidcLogin } from './helpers.js';

describeMatrix('smoke', [SQLITE], (b) => {
  let idp: TestIdp;
  const redirect = 'http://127.0.0.1:9/oauth/oidc/callback';
  beforeAll(async () => {
    idp = await startTestIdp({ redirectUris: [redirect] });
  });
  afterAll(async () => idp.close());
  it('flow', async () => {
    const app = await createTestApp(b, {
      env: {
        OAUTH_CLIENT_ID: idp.clientId,
        OAUTH_CLIENT_SECRET: idp.clientSecret,
        OPENID_PROVIDER_URL: idp.issuer,
        OPENID_REDIRECT_URI: redirect,
        ENABLE_OAUTH_SIGNUP: 'true',
      },
    });
    await signup(app);
    idp.setAccount('alice', { email: 'alice@example.com', email_verified: true, name: 'Alice' });
    const r = await oidcLogin(app, idp, 'alice');
    console.log(r.callback.status, r.callback.headers.location, r.callback.text);
    const me = await call(app, 'GET', '/api/v1/auths/', { cookie: r.callback.cookies.token });
    console.log(me.status, me.body);
    expect(me.status).toBe(403);
    await app.close();
  });
});
