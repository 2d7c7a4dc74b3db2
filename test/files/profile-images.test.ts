import { afterAll, beforeAll, expect, it } from 'vitest';
import { validateProfileImage } from '../../server/modules/profile-images/validate.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, SQLITE, signup, type TestApp } from '../harness.js';
import { PNG_1X1 } from './multipart.js';

const png = `data:image/png;base64,${PNG_1X1.toString('base64')}`;
const svg = `data:image/svg+xml;base64,${Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>').toString('base64')}`;
const htmlAsPng = `data:image/png;base64,${Buffer.from('<html><script>alert(1)</script></html>').toString('base64')}`;

describeMatrix('profile images', matrix(), (b) => {
  let app: TestApp;
  let alice: { token: string; user: { id: string } };
  let bob: { token: string; user: { id: string } };
  beforeAll(async () => {
    app = await createTestApp(b, { env: { PROFILE_IMAGE_ALLOWED_MIME_TYPES: 'image/png,image/jpeg' } });
    await signup(app);
    alice = await makeUser(app);
    bob = await makeUser(app);
  });
  afterAll(async () => app?.close());

  it('stores a valid data URI and serves the bytes with nosniff', async () => {
    const r = await call(app, 'POST', '/api/v1/users/me/profile-image', { token: alice.token, body: { image: png } });
    expect(r.status).toBe(200);
    const g = await call(app, 'GET', `/api/v1/users/${alice.user.id}/profile-image`, { token: bob.token });
    expect(g.status).toBe(200);
    expect(g.headers['content-type']).toBe('image/png');
    expect(g.headers['x-content-type-options']).toBe('nosniff');
    const raw = await app.app.inject({
      method: 'GET',
      url: `/api/v1/users/${alice.user.id}/profile-image`,
      headers: { authorization: `Bearer ${bob.token}` },
    });
    expect(raw.rawPayload.equals(PNG_1X1)).toBe(true);
  });

  it('refuses SVG, types outside PROFILE_IMAGE_ALLOWED_MIME_TYPES, mismatched bytes, oversize and odd schemes', async () => {
    const gif = `data:image/gif;base64,${Buffer.from('GIF89a....').toString('base64')}`;
    const big = `data:image/png;base64,${Buffer.concat([PNG_1X1, Buffer.alloc(1024 * 1024)]).toString('base64')}`;
    for (const image of [
      svg,
      gif,
      htmlAsPng,
      big,
      'javascript:alert(1)',
      'file:///etc/passwd',
      '//evil.example/x.png',
      'https://u:p@x.example/a.png',
      'data:image/png,notbase64',
    ]) {
      const r = await call(app, 'POST', '/api/v1/users/me/profile-image', { token: bob.token, body: { image } });
      expect([400, 413], image.slice(0, 40)).toContain(r.status);
      if (r.status === 400) expect(r.body.error.code).toMatch(/invalid_image|validation_failed/);
    }
    const g = await call(app, 'GET', `/api/v1/users/${bob.user.id}/profile-image`, { token: alice.token });
    expect(g.headers['content-type']).toBe('image/png'); // still the default
  });

  it('external URL: 302 with forwarding on (default)', async () => {
    await call(app, 'POST', '/api/v1/users/me/profile-image', {
      token: bob.token,
      body: { image: 'https://avatars.example.org/u/1.png' },
    });
    const g = await call(app, 'GET', `/api/v1/users/${bob.user.id}/profile-image`, { token: alice.token });
    expect(g.status).toBe(302);
    expect(g.headers.location).toBe('https://avatars.example.org/u/1.png');
    expect(g.headers['referrer-policy']).toBe('no-referrer');
    expect((await call(app, 'GET', '/api/v1/users/nope/profile-image', { token: alice.token })).status).toBe(404);
  });
});

describeMatrix('profile image URL forwarding off', [SQLITE], (b) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp(b, { env: { ENABLE_PROFILE_IMAGE_URL_FORWARDING: 'false' } });
  });
  afterAll(async () => app?.close());
  it('serves the default image instead of redirecting', async () => {
    const a = await signup(app);
    await call(app, 'POST', '/api/v1/users/me/profile-image', {
      token: a.token,
      body: { image: 'https://tracker.example/p.png' },
    });
    const g = await call(app, 'GET', `/api/v1/users/${a.user.id}/profile-image`, { token: a.token });
    expect(g.status).toBe(200);
    expect(g.headers.location).toBeUndefined();
    expect(g.headers['content-type']).toBe('image/png');
    expect(g.headers['x-content-type-options']).toBe('nosniff');
  });
});

it('the validator refuses SVG even when listed, and config refuses image/svg+xml at start', async () => {
  expect(() => validateProfileImage({ PROFILE_IMAGE_ALLOWED_MIME_TYPES: ['image/png'] }, svg)).toThrow(/SVG/);
  const { loadConfig } = await import('../../server/config/index.js');
  expect(() => loadConfig({ PROFILE_IMAGE_ALLOWED_MIME_TYPES: 'image/png,image/svg+xml' })).toThrow(
    /PROFILE_IMAGE_ALLOWED_MIME_TYPES/,
  );
});

describeMatrix('IFRAME_CSP in public config', [SQLITE], (b) => {
  let app: TestApp;
  const csp = "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; connect-src 'none'";
  beforeAll(async () => {
    app = await createTestApp(b, { env: { IFRAME_CSP: csp } });
  });
  afterAll(async () => app?.close());
  it('is exposed as iframe_csp', async () => {
    const r = await call(app, 'GET', '/api/config');
    expect(r.body.iframe_csp).toBe(csp);
  });
});
