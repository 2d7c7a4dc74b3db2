import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createReadStream, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../../config/index.js';
import type { AppContext } from '../../context.js';
import { notFound } from '../../platform/http/errors.js';
import { route } from '../../platform/http/route.js';
import { webDistDir } from '../web/routes.js';

/**
 * Code execution happens in the user's browser only: Python compiled to WebAssembly (Pyodide) in a
 * dedicated Web Worker. The server's part is to hand out the Pyodide runtime itself — from the
 * installed `pyodide` package, never from a CDN, so it works offline and makes no outbound call —
 * and to give the worker script a Content-Security-Policy of its own.
 */

/** The only files served under /static/pyodide/ (an allowlist: nothing else of the package or the disk). */
export const PYODIDE_FILES: Readonly<Record<string, string>> = Object.freeze({
  'pyodide.js': 'text/javascript; charset=utf-8',
  'pyodide.mjs': 'text/javascript; charset=utf-8',
  'pyodide.asm.js': 'text/javascript; charset=utf-8',
  'pyodide.asm.wasm': 'application/wasm',
  'python_stdlib.zip': 'application/zip',
  'pyodide-lock.json': 'application/json; charset=utf-8',
});

/**
 * The policy of the code worker (a worker's policy is the one delivered with its script, not the
 * page's). It replaces CONTENT_SECURITY_POLICY for that one script: scripts from this origin only,
 * WebAssembly compilation ('wasm-unsafe-eval', never 'unsafe-eval': no eval, no new Function),
 * network to this origin only (the Pyodide files), nothing else. The page's policy is unchanged.
 */
export const CODE_WORKER_CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'";

/** The worker bundle Vite emits for web/src/lib/python-worker.ts: assets/python-worker-<hash>.js */
const WORKER_FILE = /^[A-Za-z0-9_-]{1,64}\.js$/;

/** Directory of the installed `pyodide` package, or null when it is missing. */
export function pyodideDir(): string | null {
  try {
    return path.dirname(createRequire(import.meta.url).resolve('pyodide/package.json'));
  } catch {
    return null;
  }
}

/** What the UI learns about code execution (`features` of `GET /api/config`). */
export function codeFeatures(config: Config) {
  return {
    enable_code_execution: config.ENABLE_CODE_EXECUTION,
    code_execution_engine: config.CODE_EXECUTION_ENGINE,
    enable_code_interpreter: config.ENABLE_CODE_INTERPRETER,
    code_interpreter_engine: config.CODE_INTERPRETER_ENGINE,
  };
}

function isFile(p: string): { size: number; mtimeMs: number } | null {
  try {
    const s = statSync(p);
    return s.isFile() ? { size: s.size, mtimeMs: s.mtimeMs } : null;
  } catch {
    return null;
  }
}

/** Streams one file with its content type; a validator (ETag) answers revalidation with 304. */
function sendFile(req: FastifyRequest, reply: FastifyReply, file: string, type: string, cacheControl: string) {
  const st = isFile(file);
  if (!st) throw notFound('File');
  const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  reply.header('cache-control', cacheControl).header('etag', etag);
  if (req.headers['if-none-match'] === etag) return reply.code(304).send();
  return reply.type(type).header('content-length', st.size).send(createReadStream(file));
}

export function registerCodeRoutes(app: FastifyInstance, ctx: AppContext, distDir = webDistDir()): void {
  const { config, log } = ctx;
  const enabled = config.ENABLE_CODE_EXECUTION || config.ENABLE_CODE_INTERPRETER;
  const dir = pyodideDir();
  if (config.SAFE_MODE)
    log.info(
      'SAFE_MODE=true: HridaAI has no server-side Tools, Functions or Pipelines, so there is nothing to deactivate; it always runs this way.',
    );
  if (enabled && (!dir || !Object.keys(PYODIDE_FILES).every((f) => isFile(path.join(dir, f)))))
    log.error(
      'The pyodide package is not installed (npm ci): code execution is enabled but its runtime files cannot be served.',
    );

  route(app, {
    method: 'GET',
    url: '/static/pyodide/:file',
    auth: 'none',
    policy: 'public:pyodide (allowlisted runtime files of the installed pyodide package)',
    tags: ['web'],
    summary: 'The Pyodide runtime (Python in WebAssembly) for code execution in the browser',
    params: z.object({ file: z.string() }),
    handler: async (req, reply) => {
      const name = req.data.params.file;
      if (!enabled || !dir || !Object.hasOwn(PYODIDE_FILES, name)) throw notFound('File');
      // Same URL for every version of the package: revalidate (a 304 is cheap), never serve a stale runtime.
      return sendFile(req, reply, path.join(dir, name), PYODIDE_FILES[name]!, 'no-cache');
    },
  });

  route(app, {
    method: 'GET',
    url: '/assets/python-worker-:file',
    auth: 'none',
    policy: 'public:web-ui (the code worker script, with its own Content-Security-Policy)',
    tags: ['web'],
    summary: 'The built code worker script of the web UI, served with the worker policy',
    params: z.object({ file: z.string() }),
    handler: async (req, reply) => {
      const name = req.data.params.file;
      const file = path.join(distDir, 'assets', `python-worker-${name}`);
      if (!enabled || !WORKER_FILE.test(name) || !isFile(file)) throw notFound('File');
      // The worker's own policy replaces the page's (and its report-only twin) for this script only.
      reply.header('content-security-policy', CODE_WORKER_CSP);
      reply.removeHeader('content-security-policy-report-only');
      return sendFile(req, reply, file, 'text/javascript; charset=utf-8', 'public, max-age=31536000, immutable');
    },
  });
}
