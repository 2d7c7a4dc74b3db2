import { useState } from 'react';
import { runPython, stopPython, type RunResult, type RunStatus } from '../../lib/python';

/** Output of one run, as text (never HTML): stdout, stderr, the last expression's value, the error. */
export function RunOutput({ result }: { result: RunResult }) {
  const empty = !result.stdout && !result.stderr && result.result === null && !result.error;
  return (
    <div className="code-output" role="group" aria-label="Output">
      {result.stdout ? <pre className="code-output-stdout">{result.stdout}</pre> : null}
      {result.stderr ? (
        <pre className="code-output-stderr" aria-label="Standard error">
          {result.stderr}
        </pre>
      ) : null}
      {result.result !== null ? (
        <pre className="code-output-result" aria-label="Result">
          {result.result}
        </pre>
      ) : null}
      {result.error ? (
        <pre className="code-output-error" role="alert">
          {result.error}
        </pre>
      ) : null}
      {empty ? <p className="muted small">No output.</p> : null}
      <p className="muted small">Ran in your browser in {(result.ms / 1000).toFixed(2)} s.</p>
    </div>
  );
}

/** The Run button under a Python block of an answer; the code runs in this browser only. */
export function CodeRun({ code }: { code: string }) {
  const [status, setStatus] = useState<RunStatus | null>(null);
  const [result, setResult] = useState<RunResult | null>(null);

  async function run() {
    setResult(null);
    setStatus('running');
    const r = await runPython(code, { onStatus: setStatus });
    setStatus(null);
    setResult(r);
  }

  return (
    <div className="code-run">
      <div className="row tight">
        {status ? (
          <>
            <span className="muted small" role="status">
              {status === 'starting' ? 'Starting Python…' : 'Running…'}
            </span>
            <button type="button" className="btn btn-small" onClick={() => stopPython()}>
              Stop
            </button>
          </>
        ) : (
          <button
            type="button"
            className="btn btn-small"
            title="Runs in your browser (Python in WebAssembly), not on the server"
            onClick={() => void run()}
          >
            Run
          </button>
        )}
      </div>
      {result ? <RunOutput result={result} /> : null}
    </div>
  );
}
