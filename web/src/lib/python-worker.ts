/**
 * The code worker: Python (Pyodide, WebAssembly) in a dedicated Web Worker of the user's browser.
 * Nothing here runs on the server. The runtime is loaded from this server (`/static/pyodide/`),
 * never from another origin. The server sends this script with a policy of its own
 * (`default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'`): WebAssembly
 * may compile, JavaScript strings may not be evaluated, and nothing can be reached outside this
 * origin.
 *
 * Once the runtime is loaded and before any code runs, every way for code in the worker to reach
 * the network or start other code is removed from the worker's global scope (fetch,
 * XMLHttpRequest, WebSocket, EventSource, importScripts, nested workers, …): the code cannot call
 * the HridaAI API with the user's cookie, nor load more code. Output is capped; the page kills the
 * worker when a run takes too long.
 *
 * Protocol: the page posts `{ id, code, namespace }`; the worker answers `{ type: 'ready', ms }`
 * once (or `{ type: 'failed', error }` when it cannot start safely), then
 * `{ type: 'result', id, stdout, stderr, result, error, truncated }` per run.
 */
import type { PyodideInterface } from 'pyodide';
import type { PyProxy } from 'pyodide/ffi';

interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', fn: (e: MessageEvent) => void): void;
  importScripts(...urls: string[]): void;
  loadPyodide(options: { indexURL: string; packages?: string[]; fullStdLib?: boolean }): Promise<PyodideInterface>;
}

const scope = self as unknown as WorkerScope;

const PYODIDE_INDEX_URL = '/static/pyodide/';
/** Bytes of stdout + stderr kept per run. */
const OUTPUT_LIMIT = 64 * 1024;

/** Removed from the global scope before any code runs. */
const BLOCKED_GLOBALS = [
  'fetch',
  'XMLHttpRequest',
  'WebSocket',
  'WebSocketStream',
  'EventSource',
  'WebTransport',
  'importScripts',
  'Worker',
  'SharedWorker',
  'BroadcastChannel',
  'caches',
  'indexedDB',
  'cookieStore',
];

function removeGlobals(): string[] {
  const left: string[] = [];
  for (const name of BLOCKED_GLOBALS) {
    for (let o: object | null = self; o; o = Object.getPrototypeOf(o) as object | null) {
      if (Object.getOwnPropertyDescriptor(o, name)) {
        try {
          delete (o as Record<string, unknown>)[name];
        } catch {
          // not configurable: checked below
        }
      }
    }
    if (name in self) {
      try {
        Object.defineProperty(self, name, { value: undefined, configurable: false, writable: false });
      } catch {
        left.push(name);
      }
    }
  }
  return left;
}

// Runs one cell: the value of its last expression as repr(), or the error as a traceback that
// starts at the cell (no frames of the runtime). Namespaces persist per key (bounded), so the
// rounds of one code-interpreter message share their variables; no key means a fresh namespace.
const HELPER = `
import sys, traceback
from pyodide.code import eval_code_async

_namespaces = {}

async def run(src, key):
    if key is None:
        ns = {"__name__": "__main__"}
    else:
        ns = _namespaces.pop(key, None) or {"__name__": "__main__"}
        _namespaces[key] = ns
        while len(_namespaces) > 16:
            _namespaces.pop(next(iter(_namespaces)))
    try:
        value = await eval_code_async(src, ns, filename="<cell>")
        return (None if value is None else repr(value), None)
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
            tb = tb.tb_next
        return (None, "".join(traceback.format_exception(type(e), e, tb)))
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
`;

interface Job {
  id: number;
  code: string;
  namespace: string | null;
}

let out = { stdout: '', stderr: '', bytes: 0, truncated: false };
const interrupt = new Uint8Array(1);

function writer(stream: 'stdout' | 'stderr') {
  const decoder = new TextDecoder();
  return {
    write(buf: Uint8Array): number {
      if (out.truncated) return buf.length;
      const room = OUTPUT_LIMIT - out.bytes;
      const part = buf.length > room ? buf.subarray(0, room) : buf;
      out[stream] += decoder.decode(part, { stream: true });
      out.bytes += part.length;
      if (buf.length > room) {
        out.truncated = true;
        interrupt[0] = 2; // SIGINT: KeyboardInterrupt at the next check, the run stops.
      }
      return buf.length;
    },
  };
}

async function start(): Promise<(job: Job) => Promise<void>> {
  const t0 = performance.now();
  scope.importScripts(`${PYODIDE_INDEX_URL}pyodide.js`);
  const py = await scope.loadPyodide({ indexURL: PYODIDE_INDEX_URL, packages: [] });
  py.setStdout(writer('stdout'));
  py.setStderr(writer('stderr'));
  py.setStdin({ error: true });
  py.setInterruptBuffer(interrupt);
  const helperNs = py.toPy({}) as PyProxy & { get(k: string): unknown };
  py.runPython(HELPER, { globals: helperNs });
  const run = helperNs.get('run') as (src: string, key: string | null) => Promise<PyProxy & { toJs(): unknown }>;
  const left = removeGlobals();
  // Fail closed: no code runs in a worker that could still reach the network.
  if (left.length) throw new Error(`cannot remove ${left.join(', ')} from the worker`);
  scope.postMessage({ type: 'ready', ms: Math.round(performance.now() - t0) });

  return async (job: Job) => {
    out = { stdout: '', stderr: '', bytes: 0, truncated: false };
    interrupt[0] = 0;
    let result: string | null = null;
    let error: string | null = null;
    try {
      const r = await run(job.code, job.namespace);
      const [value, err] = r.toJs() as [string | null | undefined, string | null | undefined];
      r.destroy();
      result = value ?? null;
      error = err ?? null;
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    interrupt[0] = 0;
    if (out.truncated)
      error = `Output limit reached (${OUTPUT_LIMIT / 1024} KiB): the run was stopped and the rest of the output discarded.`;
    scope.postMessage({
      type: 'result',
      id: job.id,
      stdout: out.stdout,
      stderr: out.stderr,
      result,
      error,
      truncated: out.truncated,
    });
  };
}

const ready = start();
let chain: Promise<void> = Promise.resolve();

ready.catch((e: unknown) => {
  scope.postMessage({ type: 'failed', error: e instanceof Error ? e.message : String(e) });
});

scope.addEventListener('message', (e: MessageEvent) => {
  const job = e.data as Job;
  if (typeof job?.id !== 'number' || typeof job.code !== 'string') return;
  chain = chain.then(async () => {
    try {
      const runJob = await ready;
      await runJob(job);
    } catch (err) {
      scope.postMessage({
        type: 'result',
        id: job.id,
        stdout: '',
        stderr: '',
        result: null,
        error: `Python could not start: ${err instanceof Error ? err.message : String(err)}`,
        truncated: false,
      });
    }
  });
});
