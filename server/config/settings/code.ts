import { bool, custom, type SettingDef } from '../types.js';

const AREA = 'Code execution, Tools and Functions';

/**
 * The engine settings accept the guide's two values but run only `pyodide`: HridaAI has no Jupyter
 * integration, and running code on a server instead of in the browser must never happen silently.
 */
function engine(variable: string, feature: string): SettingDef<'pyodide'> {
  return custom<'pyodide'>(
    'pyodide',
    'pyodide (jupyter is recognised and refused at start)',
    {
      area: AREA,
      description: `Where ${feature} runs. \`pyodide\` (default): Python compiled to WebAssembly, in a Web Worker of the user's browser, loaded from this server (\`/static/pyodide/\`), never on the server. \`jupyter\` is refused at start: HridaAI has no Jupyter integration, and code would run on a server with server-side access — it is not replaced by anything else.`,
    },
    (raw) => {
      if (raw === undefined || raw.trim() === '') return 'pyodide';
      const v = raw.trim().toLowerCase();
      if (v === 'pyodide') return 'pyodide';
      if (v === 'jupyter')
        throw `jupyter is not available: HridaAI has no Jupyter integration and does not run code on a server. Use ${variable}=pyodide (runs in the user's browser), or turn the feature off.`;
      throw `must be pyodide (got "${raw}")`;
    },
  );
}

/** In-chat code execution (browser only) and the guide's switches for server-side plugins. */
export const codeSettings = {
  ENABLE_CODE_EXECUTION: bool(true, {
    area: AREA,
    description:
      'Python code blocks in answers get a **Run** button; the code runs in the user’s browser (CODE_EXECUTION_ENGINE) and its output (stdout, stderr, result, error) is shown under the block. Runs stop after 30 s and output is capped at 64 KiB. Exposed to the UI as `features.enable_code_execution` in `GET /api/config`. `false`: no Run button, and the Pyodide files are not served unless ENABLE_CODE_INTERPRETER is on.',
  }),
  CODE_EXECUTION_ENGINE: engine('CODE_EXECUTION_ENGINE', 'the Run button’s code'),
  ENABLE_CODE_INTERPRETER: bool(true, {
    area: AREA,
    description:
      'The chat composer offers a **Code interpreter** switch. When on for a message, the model is asked to put code it wants run in ```` ```python exec ```` blocks; the browser runs them (CODE_INTERPRETER_ENGINE) after the answer and sends the output back to the model as the next message, at most 3 rounds per message. Everything runs in the browser over the normal chat completion API. Exposed as `features.enable_code_interpreter`. `false`: no switch.',
  }),
  CODE_INTERPRETER_ENGINE: engine('CODE_INTERPRETER_ENGINE', 'the code interpreter’s code'),
  SAFE_MODE: bool(false, {
    area: AREA,
    description:
      'Accepted for compatibility with the guide (start with every Function deactivated). HridaAI has no server-side plugin runtime — no Tools, Functions or Pipelines are ever loaded or run — so it always behaves as if in Safe Mode. `true` is logged at start and shown in the admin settings view; nothing else changes.',
  }),
  ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS: bool(true, {
    area: AREA,
    description:
      'Accepted for compatibility with the guide, whose default (`true`) installs the Python requirements Tools and Functions declare in their frontmatter. HridaAI runs no Tools or Functions and never installs packages — not with pip, not at run time, not in the browser (Pyodide loads no packages) — so no install happens whatever the value.',
  }),
} satisfies Record<string, SettingDef<unknown>>;
