/**
 * The code execution settings: the guide's defaults, `jupyter` refused at start with the variable's
 * name, the guide's plugin switches accepted (HridaAI has no plugin runtime), and what the UI and
 * the admin settings view see.
 */
import pino from 'pino';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigErrors, loadConfig } from '../../server/config/index.js';
import { settings } from '../../server/config/schema.js';
import { call, createTestApp, makeUser, signup, SQLITE, type TestApp } from '../harness.js';

function refused(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.message;
    throw e;
  }
  throw new Error('expected the configuration to be refused');
}

describe('code execution settings', () => {
  it('use the guide’s defaults', () => {
    const c = loadConfig({});
    expect(c.ENABLE_CODE_EXECUTION).toBe(true);
    expect(c.CODE_EXECUTION_ENGINE).toBe('pyodide');
    expect(c.ENABLE_CODE_INTERPRETER).toBe(true);
    expect(c.CODE_INTERPRETER_ENGINE).toBe('pyodide');
    expect(c.SAFE_MODE).toBe(false);
    expect(c.ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS).toBe(true);
    expect(settings.ENABLE_CODE_EXECUTION.default).toBe('true');
    expect(settings.CODE_EXECUTION_ENGINE.default).toBe('pyodide');
    expect(settings.ENABLE_CODE_INTERPRETER.default).toBe('true');
    expect(settings.CODE_INTERPRETER_ENGINE.default).toBe('pyodide');
    expect(settings.SAFE_MODE.default).toBe('false');
    expect(settings.ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS.default).toBe('true');
  });

  it('accept pyodide in any case, and the documented boolean spellings', () => {
    const c = loadConfig({
      CODE_EXECUTION_ENGINE: 'Pyodide',
      CODE_INTERPRETER_ENGINE: ' pyodide ',
      ENABLE_CODE_EXECUTION: 'false',
      ENABLE_CODE_INTERPRETER: 'off',
      SAFE_MODE: 'true',
      ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS: 'false',
    });
    expect(c.CODE_EXECUTION_ENGINE).toBe('pyodide');
    expect(c.CODE_INTERPRETER_ENGINE).toBe('pyodide');
    expect(c.ENABLE_CODE_EXECUTION).toBe(false);
    expect(c.ENABLE_CODE_INTERPRETER).toBe(false);
    expect(c.SAFE_MODE).toBe(true);
    expect(c.ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS).toBe(false);
    expect(
      loadConfig({ ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS: 'true' }).ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS,
    ).toBe(true);
  });

  it('refuse jupyter at start, naming the variable (never a silent fallback)', () => {
    for (const name of ['CODE_EXECUTION_ENGINE', 'CODE_INTERPRETER_ENGINE'] as const) {
      const msg = refused({ [name]: 'jupyter' });
      expect(msg).toContain(`${name}: jupyter is not available`);
      expect(msg).toMatch(/no Jupyter integration/);
      // Refused even when the feature is off: the value would be a lie either way.
      expect(
        refused({ [name]: 'JUPYTER', ENABLE_CODE_EXECUTION: 'false', ENABLE_CODE_INTERPRETER: 'false' }),
      ).toContain(`${name}: jupyter is not available`);
    }
    const both = refused({ CODE_EXECUTION_ENGINE: 'jupyter', CODE_INTERPRETER_ENGINE: 'jupyter' });
    expect(both).toContain('CODE_EXECUTION_ENGINE:');
    expect(both).toContain('CODE_INTERPRETER_ENGINE:');
  });

  it('refuse unknown engines and non-boolean switches', () => {
    expect(refused({ CODE_EXECUTION_ENGINE: 'docker' })).toContain(
      'CODE_EXECUTION_ENGINE: must be pyodide (got "docker")',
    );
    expect(refused({ SAFE_MODE: 'maybe' })).toContain('SAFE_MODE: must be true or false');
    expect(refused({ ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS: 'sometimes' })).toContain(
      'ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS: must be true or false',
    );
  });
});

describe('code execution: what the UI, the admin and the log see', () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close();
  });

  it('/api/config exposes the flags and engines (defaults: both on, pyodide)', async () => {
    const app = await createTestApp(SQLITE);
    apps.push(app);
    const r = await call(app, 'GET', '/api/config');
    expect(r.status).toBe(200);
    expect(r.body.features).toMatchObject({
      enable_code_execution: true,
      code_execution_engine: 'pyodide',
      enable_code_interpreter: true,
      code_interpreter_engine: 'pyodide',
    });
    // Nothing about the plugin switches reaches an anonymous caller.
    expect(r.text).not.toMatch(/safe_mode|pip/i);
  });

  it('/api/config reflects the switches turned off', async () => {
    const app = await createTestApp(SQLITE, {
      env: { ENABLE_CODE_EXECUTION: 'false', ENABLE_CODE_INTERPRETER: 'false' },
    });
    apps.push(app);
    const r = await call(app, 'GET', '/api/config');
    expect(r.body.features.enable_code_execution).toBe(false);
    expect(r.body.features.enable_code_interpreter).toBe(false);
  });

  it('SAFE_MODE=true is logged at start and shown in the admin settings view; pip too', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const app = await createTestApp(SQLITE, {
      env: { SAFE_MODE: 'true', ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS: 'false' },
      logger: pino({ level: 'info' }, sink),
    });
    apps.push(app);
    expect(lines.join('')).toMatch(/SAFE_MODE=true/);
    const admin = await signup(app);
    const r = await call(app, 'GET', '/api/v1/admin/settings', { token: admin.token });
    expect(r.status).toBe(200);
    const byName = new Map(
      (r.body.items as { name: string; value: unknown; source: string }[]).map((i) => [i.name, i]),
    );
    expect(byName.get('SAFE_MODE')).toMatchObject({ value: true, source: 'env' });
    expect(byName.get('ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS')).toMatchObject({ value: false, source: 'env' });
    expect(byName.get('CODE_EXECUTION_ENGINE')).toMatchObject({ value: 'pyodide', source: 'default' });
    // Not for ordinary users.
    const user = await makeUser(app, { role: 'user' });
    expect((await call(app, 'GET', '/api/v1/admin/settings', { token: user.token })).status).toBe(403);
  });

  it('SAFE_MODE=false (default) logs nothing about it', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const app = await createTestApp(SQLITE, { logger: pino({ level: 'info' }, sink) });
    apps.push(app);
    expect(lines.join('')).not.toMatch(/SAFE_MODE/);
  });
});
