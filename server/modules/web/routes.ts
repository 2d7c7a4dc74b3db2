import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppContext } from '../../context.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';

/** The project root: the nearest directory above this module that holds package.json. */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export function webDistDir(): string {
  return path.join(projectRoot(), 'web', 'dist');
}

const MISSING_BUILD_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HridaAI</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>HridaAI</h1>
<p>The web interface has not been built. An administrator can build it with
<code>npm run build:web</code> (or <code>npm run build</code>) and restart the server.</p>
<p>The API is available under <code>/api</code>.</p></main></body></html>
`;

/** Resolves a URL path to a file inside `root`, or null: no traversal, no dotfiles, regular files only. */
function resolveAsset(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/').filter((s) => s !== '');
  if (segments.length === 0 || segments.some((s) => s.startsWith('.'))) return null;
  const full = path.resolve(root, ...segments);
  if (!full.startsWith(root + path.sep)) return null;
  try {
    return statSync(full).isFile() ? path.relative(root, full) : null;
  } catch {
    return null;
  }
}

/**
 * Serves the built web UI (web/dist) at `/`. Hashed files under /assets are cached for a year;
 * every other non-API path falls back to index.html so that the client-side router handles it.
 * Unknown /api paths keep the JSON 404.
 */
export async function registerWebUi(app: FastifyInstance, _ctx: AppContext, root = webDistDir()): Promise<void> {
  const built = existsSync(path.join(root, 'index.html'));
  if (built) await app.register(fastifyStatic, { root, serve: false, dotfiles: 'deny', index: false });

  route(app, {
    method: 'GET',
    url: '/*',
    auth: 'none',
    policy: 'public:web-ui (static files of the built interface)',
    tags: ['web'],
    summary: 'The web interface (static files; other paths fall back to index.html)',
    handler: async (req, reply) => {
      const urlPath = req.url.split('?')[0]!;
      if (urlPath === '/api' || urlPath.startsWith('/api/')) throw new AppError('not_found', `No route GET ${urlPath}`);
      if (!built) {
        reply.code(503).header('cache-control', 'no-store').type('text/html; charset=utf-8');
        return MISSING_BUILD_PAGE;
      }
      const file = resolveAsset(root, urlPath);
      if (file && file !== 'index.html') {
        const immutable = file.startsWith('assets' + path.sep);
        reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
        return reply.sendFile(file, { cacheControl: false });
      }
      // Client-side routes: index.html, never cached so that a new build is picked up at once.
      const looksLikeFile = /\.[a-z0-9]{1,8}$/i.test(urlPath);
      if (looksLikeFile) throw notFound('File');
      reply.header('cache-control', 'no-cache');
      return reply.sendFile('index.html', { cacheControl: false });
    },
  });
}
