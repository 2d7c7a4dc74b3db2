/**
 * Child process: a bare Fastify + undici reverse proxy — the reference "minimal Node proxy" the
 * gateway is compared with. No auth, no checks, no accounting: parse JSON, forward with a
 * keep-alive undici Agent, stream the answer back. Prints `READY <port>`.
 */
import Fastify from 'fastify';
import type { Readable } from 'node:stream';
import { Agent } from 'undici';

const upstream = process.argv[2]!;
const agent = new Agent({ keepAliveTimeout: 60_000, connections: 2048 });
const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });

app.post('/v1/chat/completions', async (req, reply) => {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  const u = new URL('/v1/chat/completions', upstream);
  const res = await agent.request({
    origin: u.origin,
    path: u.pathname,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(req.body),
    signal: ac.signal,
  });
  reply.code(res.statusCode);
  const type = res.headers['content-type'];
  if (typeof type === 'string') reply.header('content-type', type);
  return reply.send(res.body as unknown as Readable);
});

await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
process.stdout.write(`READY ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
