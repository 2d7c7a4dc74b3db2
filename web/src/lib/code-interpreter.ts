/**
 * The code interpreter's convention with the model, all in the browser: the model writes code it
 * wants run in a fenced block whose info string is `python exec`; after the answer the page runs
 * those blocks (python.ts) and sends their output back as the next message, at most MAX_ROUNDS
 * times per message the user sends.
 */
import { fencesOf } from './markdown.js';
import type { RunResult } from './python.js';

export const MAX_ROUNDS = 3;

/** Marks the message that carries execution output (first line), also after a reload. */
export const OUTPUT_HEADER = 'Code interpreter output';

/** The system instruction sent with a message when the code interpreter is on. */
export const INTERPRETER_INSTRUCTION = [
  'You can run Python code. To run code, put it in a fenced code block whose info string is `python exec`, for example:',
  '',
  '```python exec',
  'print(6 * 7)',
  '```',
  '',
  "Such blocks run in the user's browser (Python 3 with its standard library only: no network, no package installs, no access to the user's files) after your answer ends. The output of every block (stdout, stderr, the value of the last expression, errors) is then sent to you in the next message, and you continue from there. Variables persist between the rounds of this message. Use a plain ```python block for code that should only be shown, not run. " +
    `At most ${MAX_ROUNDS} rounds of execution follow one message of the user, and each run is stopped after 30 seconds.`,
].join('\n');

/** The `python exec` blocks of an answer, in order. */
export function execBlocks(markdown: string): string[] {
  return fencesOf(markdown)
    .filter((f) => ['python', 'py', 'python3'].includes(f.words[0] ?? '') && f.words.includes('exec'))
    .map((f) => f.code);
}

/** A fence longer than any run of backticks in the text, so the text cannot close it. */
function fenced(text: string, lang = 'text'): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${text.endsWith('\n') ? text : `${text}\n`}${fence}`;
}

/** The follow-up message: the output of each block of one round. */
export function formatOutputs(results: RunResult[], round: number): string {
  const parts = [`${OUTPUT_HEADER} (round ${round} of at most ${MAX_ROUNDS}):`];
  results.forEach((r, i) => {
    const block = `Block ${i + 1}`;
    if (r.stdout) parts.push(`${block}, stdout:\n${fenced(r.stdout)}`);
    if (r.stderr) parts.push(`${block}, stderr:\n${fenced(r.stderr)}`);
    if (r.result !== null) parts.push(`${block}, result:\n${fenced(r.result)}`);
    if (r.error) parts.push(`${block}, error:\n${fenced(r.error)}`);
    if (!r.stdout && !r.stderr && r.result === null && !r.error) parts.push(`${block}: no output.`);
  });
  return parts.join('\n\n');
}

export function isExecutionOutput(content: string): boolean {
  return content.startsWith(OUTPUT_HEADER);
}
