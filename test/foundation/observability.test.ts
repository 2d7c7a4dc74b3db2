import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, signup, sleep, SQLITE, type TestApp } from '../harness.js';

const apps: TestApp[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function collector(): Promise<{ url: string; bodies: { path: string; type: string; body: Buffer }[] }> {
  const bodies: { path: string; type: string; body: Buffer }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push({ path: req.url ?? '', type: String(req.headers['content-type']), body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies };
}

async function waitFor<T>(fn: () => T | undefined, ms = 8000): Promise<T | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = fn();
    if (v) return v;
    await sleep(100);
  }
  return undefined;
}

describeMatrix('observability', [SQLITE], (b) => {
  it('ENABLE_OTEL=true exports request spans on its own (OTLP http/json)', async () => {
    const c = await collector();
    const app = await createTestApp(b, {
      env: {
        ENABLE_OTEL: 'true',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_ENDPOINT: c.url,
        OTEL_SERVICE_NAME: 'hrida-test',
      },
    });
    apps.push(app);
    await call(app, 'GET', '/health', {
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    const got = await waitFor(() => c.bodies.find((x) => x.path === '/v1/traces'));
    expect(got, 'no spans reached the collector').toBeDefined();
    const text = got!.body.toString();
    expect(text).toContain('hrida-test');
    expect(text).toContain('GET /health');
    expect(text).toContain('0af7651916cd43dd8448eb211c80319c'); // the incoming trace context is continued
  });

  it('ENABLE_OTEL=true exports over gRPC by default', async () => {
    const paths: string[] = [];
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      paths.push(String(headers[':path']));
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(() => r())));
    const app = await createTestApp(b, {
      env: {
        ENABLE_OTEL: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      },
    });
    apps.push(app);
    await call(app, 'GET', '/health');
    const p = await waitFor(() => paths.find((x) => x.includes('TraceService/Export')));
    expect(p).toBe('/opentelemetry.proto.collector.trace.v1.TraceService/Export');
  });

  it('no spans leave the server when ENABLE_OTEL is off', async () => {
    const c = await collector();
    const app = await createTestApp(b, {
      env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_ENDPOINT: c.url },
    });
    apps.push(app);
    await call(app, 'GET', '/health');
    await sleep(1500);
    expect(c.bodies).toHaveLength(0);
  });

  it('metrics are for admins only and count requests by route template', async () => {
    const app = await createTestApp(b);
    apps.push(app);
    const admin = await signup(app);
    const user = await makeUser(app);
    await call(app, 'GET', `/api/v1/users/${user.user.id}`, { token: admin.token });
    expect((await call(app, 'GET', '/api/v1/metrics')).status).toBe(401);
    expect((await call(app, 'GET', '/api/v1/metrics', { token: user.token })).status).toBe(403);
    const m = await call(app, 'GET', '/api/v1/metrics', { token: admin.token });
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/hridaai_http_requests_total\{method="GET",route="\/api\/v1\/users\/:id",status="200"\} 1/);
    expect(m.text).not.toContain(user.user.id);
    const off = await createTestApp(b, { env: { ENABLE_METRICS: 'false' } });
    apps.push(off);
    const a2 = await signup(off);
    expect((await call(off, 'GET', '/api/v1/metrics', { token: a2.token })).status).toBe(404);
  });
});
