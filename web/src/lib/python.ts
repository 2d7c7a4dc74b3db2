/**
 * Runs Python in the user's browser: one dedicated Web Worker (python-worker.ts) with Pyodide,
 * started on first use and reused, one run at a time. A run that takes longer than the time limit
 * kills the worker (the next run starts a fresh one); output is capped. Nothing is sent to the
 * server: the code and its output stay in this page.
 */

export interface RunResult {
  stdout: string;
  stderr: string;
  /** repr() of the last expression, when it is not None. */
  result: string | null;
  /** Traceback, time limit, output limit or start-up failure. */
  error: string | null;
  truncated: boolean;
  /** Milliseconds the run took (start-up of the worker excluded). */
  ms: number;
}

export type RunStatus = 'starting' | 'running';

/** Longest a run may take before the worker is killed. */
export const RUN_TIMEOUT_MS = 30_000;
/** Longest the runtime may take to load (about 10 MB, once per page). */
export const START_TIMEOUT_MS = 120_000;
/** Characters kept of each output stream (the worker caps bytes already; this is a second fence). */
export const OUTPUT_LIMIT = 64 * 1024;
/** An unused worker is stopped after this long to give its memory back. */
const IDLE_MS = 10 * 60_000;

interface WorkerResult {
  type: 'result';
  id: number;
  stdout: string;
  stderr: string;
  result: string | null;
  error: string | null;
  truncated: boolean;
}

/** The worker was stopped on purpose (Stop, time limit) while it was starting. */
class Stopped extends Error {}

let worker: Worker | null = null;
let ready: Promise<void> | null = null;
let abortStart: ((e: Error) => void) | null = null;
let startedIn: number | null = null;
let seq = 0;
let chain: Promise<unknown> = Promise.resolve();
let idleTimer = 0;
const pending = new Map<number, (r: WorkerResult | null, error?: string) => void>();

const clip = (s: unknown) => (typeof s === 'string' ? (s.length > OUTPUT_LIMIT ? s.slice(0, OUTPUT_LIMIT) : s) : '');

function spawn(): void {
  const w = new Worker(new URL('./python-worker.ts', import.meta.url), { name: 'python' });
  worker = w;
  startedIn = null;
  ready = new Promise<void>((resolve, reject) => {
    abortStart = reject;
    const timer = window.setTimeout(
      () => reject(new Error(`Python did not start within ${START_TIMEOUT_MS / 1000} s`)),
      START_TIMEOUT_MS,
    );
    w.addEventListener('message', (e: MessageEvent) => {
      const m = e.data as Partial<Omit<WorkerResult, 'type'>> & { type?: string; ms?: number };
      if (m.type === 'ready') {
        window.clearTimeout(timer);
        startedIn = typeof m.ms === 'number' ? m.ms : null;
        resolve();
      } else if (m.type === 'failed') {
        window.clearTimeout(timer);
        reject(new Error(typeof m.error === 'string' ? m.error : 'Python could not start'));
      } else if (m.type === 'result' && typeof m.id === 'number') {
        pending.get(m.id)?.(m as WorkerResult);
      }
    });
    w.addEventListener('error', (e: ErrorEvent) => {
      window.clearTimeout(timer);
      reject(new Error(e.message || 'The Python worker could not be loaded'));
    });
  });
  // Rejections are handled by the run that awaits it.
  ready.catch(() => undefined);
}

/** Stops the worker (and with it any run in progress); the next run starts a fresh one. */
export function stopPython(reason = 'Stopped.'): void {
  window.clearTimeout(idleTimer);
  worker?.terminate();
  worker = null;
  ready = null;
  abortStart?.(new Stopped(reason));
  abortStart = null;
  for (const [id, done] of [...pending]) {
    pending.delete(id);
    done(null, reason);
  }
}

/** How long the current worker took to load Pyodide (ms), once it has. */
export function pythonStartMs(): number | null {
  return startedIn;
}

async function runOne(
  code: string,
  namespace: string | null,
  timeoutMs: number,
  onStatus?: (s: RunStatus) => void,
): Promise<RunResult> {
  window.clearTimeout(idleTimer);
  const failed = (error: string, ms = 0): RunResult => ({
    stdout: '',
    stderr: '',
    result: null,
    error,
    truncated: false,
    ms,
  });
  if (!worker || !ready) {
    onStatus?.('starting');
    spawn();
  }
  try {
    await ready;
  } catch (e) {
    if (e instanceof Stopped) return failed(e.message);
    stopPython();
    return failed(`Python could not start: ${e instanceof Error ? e.message : String(e)}`);
  }
  const w = worker;
  if (!w) return failed('Stopped.');
  onStatus?.('running');
  const id = ++seq;
  const t0 = performance.now();
  const r = await new Promise<RunResult>((resolve) => {
    const timer = window.setTimeout(() => {
      stopPython(`Stopped after ${timeoutMs / 1000} s (time limit). Variables of earlier runs are gone.`);
    }, timeoutMs);
    pending.set(id, (m, error) => {
      window.clearTimeout(timer);
      pending.delete(id);
      const ms = Math.round(performance.now() - t0);
      if (!m) return resolve(failed(error ?? 'Stopped.', ms));
      resolve({
        stdout: clip(m.stdout),
        stderr: clip(m.stderr),
        result: typeof m.result === 'string' ? clip(m.result) : null,
        error: typeof m.error === 'string' ? clip(m.error) : null,
        truncated: m.truncated === true,
        ms,
      });
    });
    w.postMessage({ id, code, namespace });
  });
  idleTimer = window.setTimeout(() => stopPython(), IDLE_MS);
  return r;
}

/**
 * Runs `code` after any run already queued. `namespace`: runs with the same key share their
 * variables (the rounds of one code-interpreter message); without one every run starts clean.
 */
export function runPython(
  code: string,
  opts: { namespace?: string; timeoutMs?: number; onStatus?: (s: RunStatus) => void } = {},
): Promise<RunResult> {
  const p = chain.then(() => runOne(code, opts.namespace ?? null, opts.timeoutMs ?? RUN_TIMEOUT_MS, opts.onStatus));
  chain = p.catch(() => undefined);
  return p;
}
