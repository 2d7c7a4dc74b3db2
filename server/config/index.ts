import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { settings, type RawConfig, type SettingName } from './schema.js';
import { ConfigError } from './types.js';
import { parseCorsOrigins } from './validators.js';

export { ConfigError } from './types.js';
export { settings } from './schema.js';
export type { SettingName } from './schema.js';

export type DatabaseKind = 'sqlite' | 'postgresql';

export interface Config extends RawConfig {
  /** Absolute DATA_DIR. */
  dataDir: string;
  /** `encrypted`: SQLite encrypted with SQLCipher (DATABASE_TYPE=sqlite+sqlcipher), key in DATABASE_PASSWORD. */
  database: { kind: DatabaseKind; url: string; sqlitePath: string | null; encrypted: boolean };
  cors: { origins: '*' | string[]; customSchemes: string[] };
  authCookie: { secure: boolean; sameSite: 'lax' | 'strict' | 'none' };
  sessionCookie: { secure: boolean; sameSite: 'lax' | 'strict' | 'none' };
  passwordRegex: RegExp | null;
  /** Where each value came from, for the admin settings view. */
  sources: Record<SettingName, 'env' | '.env' | 'default' | 'entry-default'>;
  /** Warnings to log at start. */
  warnings: string[];
}

export class ConfigErrors extends Error {
  constructor(readonly errors: ConfigError[]) {
    super(
      `Invalid configuration:\n${errors.map((e) => `  - ${e.message}`).join('\n')}\nSee docs/configuration.md for every setting.`,
    );
    this.name = 'ConfigErrors';
  }
}

export interface LoadOptions {
  /** Defaults that depend on the entry point (e.g. `serve` runs with ENV=prod unless set). */
  entryDefaults?: Partial<Record<SettingName, string>>;
  /** Read `.env` from this directory (default: do not read). */
  dotenvDir?: string;
}

/** Reads `.env` (if present) without touching process.env. */
export function readDotenv(dir: string): Record<string, string> {
  const file = path.join(dir, '.env');
  if (!existsSync(file)) return {};
  return parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
}

/**
 * Loads and validates every setting. Values come from `env` first, then `.env`, then the entry
 * point's defaults, then the documented defaults. Collects every problem before failing.
 */
export function loadConfig(env: Record<string, string | undefined>, opts: LoadOptions = {}): Config {
  const dotenv = opts.dotenvDir ? readDotenv(opts.dotenvDir) : {};
  const errors: ConfigError[] = [];
  const raw: Record<string, unknown> = {};
  const sources = {} as Config['sources'];

  for (const name of Object.keys(settings) as SettingName[]) {
    const def = settings[name];
    let value: string | undefined;
    if (env[name] !== undefined && env[name] !== '') {
      value = env[name];
      sources[name] = 'env';
    } else if (dotenv[name] !== undefined && dotenv[name] !== '') {
      value = dotenv[name];
      sources[name] = '.env';
    } else if (opts.entryDefaults?.[name] !== undefined) {
      value = opts.entryDefaults[name];
      sources[name] = 'entry-default';
    } else {
      sources[name] = 'default';
    }
    try {
      raw[name] = def.parse(value);
    } catch (e) {
      errors.push(new ConfigError(name, typeof e === 'string' ? e : (e as Error).message));
    }
  }
  if (errors.length) throw new ConfigErrors(errors);
  const c = raw as RawConfig;
  const warnings: string[] = [];

  // --- cross-field rules
  const customSchemes = (c.CORS_ALLOW_CUSTOM_SCHEME ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  let origins: '*' | string[] = '*';
  try {
    origins = parseCorsOrigins(c.CORS_ALLOW_ORIGIN ?? '*', customSchemes);
  } catch (e) {
    errors.push(new ConfigError('CORS_ALLOW_ORIGIN', String(e)));
  }

  const sessionCookie = { secure: c.HRIDAAI_SESSION_COOKIE_SECURE, sameSite: c.HRIDAAI_SESSION_COOKIE_SAME_SITE };
  const authCookie = {
    secure: c.HRIDAAI_AUTH_COOKIE_SECURE ?? sessionCookie.secure,
    sameSite: c.HRIDAAI_AUTH_COOKIE_SAME_SITE ?? sessionCookie.sameSite,
  };
  if (sessionCookie.sameSite === 'none' && !sessionCookie.secure)
    errors.push(
      new ConfigError(
        'HRIDAAI_SESSION_COOKIE_SAME_SITE',
        'none requires HRIDAAI_SESSION_COOKIE_SECURE=true (browsers drop the cookie otherwise)',
      ),
    );
  if (authCookie.sameSite === 'none' && !authCookie.secure)
    errors.push(
      new ConfigError(
        'HRIDAAI_AUTH_COOKIE_SAME_SITE',
        'none requires the auth cookie to be Secure (HRIDAAI_AUTH_COOKIE_SECURE=true)',
      ),
    );

  if ((c.HRIDAAI_ADMIN_EMAIL === null) !== (c.HRIDAAI_ADMIN_PASSWORD === null))
    errors.push(
      new ConfigError(
        c.HRIDAAI_ADMIN_EMAIL === null ? 'HRIDAAI_ADMIN_EMAIL' : 'HRIDAAI_ADMIN_PASSWORD',
        'HRIDAAI_ADMIN_EMAIL and HRIDAAI_ADMIN_PASSWORD must be set together',
      ),
    );
  if (c.HRIDAAI_ADMIN_PASSWORD !== null && Buffer.byteLength(c.HRIDAAI_ADMIN_PASSWORD, 'utf8') > 72)
    errors.push(
      new ConfigError('HRIDAAI_ADMIN_PASSWORD', 'is longer than 72 bytes (bcrypt would silently truncate it)'),
    );
  const passwordRegex = c.ENABLE_PASSWORD_VALIDATION ? new RegExp(c.PASSWORD_VALIDATION_REGEX_PATTERN ?? '') : null;
  if (passwordRegex && c.HRIDAAI_ADMIN_PASSWORD !== null && !passwordRegex.test(c.HRIDAAI_ADMIN_PASSWORD))
    errors.push(
      new ConfigError(
        'HRIDAAI_ADMIN_PASSWORD',
        `does not match PASSWORD_VALIDATION_REGEX_PATTERN${c.PASSWORD_VALIDATION_HINT ? ` (${c.PASSWORD_VALIDATION_HINT})` : ''}`,
      ),
    );

  const dataDir = path.resolve(c.DATA_DIR ?? './data');
  let dbUrl = c.DATABASE_URL ?? `sqlite:///${path.join(dataDir, 'hridaai.db')}`;
  let kind: DatabaseKind | 'sqlite+sqlcipher' = /^postgres/i.test(dbUrl)
    ? 'postgresql'
    : /^sqlite\+sqlcipher/i.test(dbUrl)
      ? 'sqlite+sqlcipher'
      : 'sqlite';
  if (c.DATABASE_TYPE) {
    if (c.DATABASE_TYPE === 'postgresql' && kind !== 'postgresql')
      errors.push(new ConfigError('DATABASE_TYPE', 'is postgresql but DATABASE_URL is not a postgresql:// URL'));
    if (c.DATABASE_TYPE !== 'postgresql' && kind === 'postgresql')
      errors.push(new ConfigError('DATABASE_TYPE', `is ${c.DATABASE_TYPE} but DATABASE_URL is a postgresql:// URL`));
    if (c.DATABASE_TYPE === 'sqlite' && kind === 'sqlite+sqlcipher')
      errors.push(new ConfigError('DATABASE_TYPE', 'is sqlite but DATABASE_URL is a sqlite+sqlcipher:/// URL'));
    if (c.DATABASE_TYPE === 'sqlite+sqlcipher') kind = 'sqlite+sqlcipher';
  }
  const encrypted = kind === 'sqlite+sqlcipher';
  if (encrypted && c.DATABASE_PASSWORD === null)
    errors.push(
      new ConfigError(
        'DATABASE_PASSWORD',
        'is required when DATABASE_TYPE is sqlite+sqlcipher: it is the passphrase the database file is encrypted with (generate one with `openssl rand -base64 32` and keep it safe; without it the data cannot be read)',
      ),
    );
  if (!encrypted && c.DATABASE_PASSWORD !== null)
    errors.push(
      new ConfigError(
        'DATABASE_PASSWORD',
        kind === 'postgresql'
          ? 'is only used for encrypted SQLite (DATABASE_TYPE=sqlite+sqlcipher); PostgreSQL takes its password in DATABASE_URL'
          : 'is set but the database is not encrypted: set DATABASE_TYPE=sqlite+sqlcipher to encrypt it, or unset DATABASE_PASSWORD',
      ),
    );
  let sqlitePath: string | null = null;
  if (kind !== 'postgresql') {
    const p = dbUrl.replace(/^sqlite(\+sqlcipher)?:\/\/\//i, '');
    sqlitePath = p === ':memory:' ? ':memory:' : path.resolve(p);
    dbUrl = `${encrypted ? 'sqlite+sqlcipher' : 'sqlite'}:///${sqlitePath}`;
    if (encrypted && sqlitePath === ':memory:')
      errors.push(
        new ConfigError('DATABASE_URL', 'is :memory: but DATABASE_TYPE is sqlite+sqlcipher: encryption needs a file'),
      );
  }

  if (errors.length) throw new ConfigErrors(errors);

  // --- risky values: warn
  if (origins === '*')
    warnings.push(
      'CORS_ALLOW_ORIGIN is "*": any web origin may call the API (without credentials). Restrict it to your domain(s).',
    );
  if (c.JWT_EXPIRES_IN === null)
    warnings.push(
      'JWT_EXPIRES_IN=-1: session tokens never expire. They stay revocable, but set a lifetime in production.',
    );
  if (c.ENV === 'prod' && !authCookie.secure)
    warnings.push('ENV=prod with insecure cookies: set HRIDAAI_SESSION_COOKIE_SECURE=true when serving over HTTPS.');
  if (c.DEFAULT_USER_ROLE !== 'pending')
    warnings.push(`DEFAULT_USER_ROLE=${c.DEFAULT_USER_ROLE}: new accounts get access without admin approval.`);
  if (c.PASSWORD_HASH_ROUNDS < 10)
    warnings.push(`PASSWORD_HASH_ROUNDS=${c.PASSWORD_HASH_ROUNDS} is below 10: only suitable for tests.`);
  if (encrypted && c.DATABASE_PASSWORD !== null && c.DATABASE_PASSWORD.length < 16)
    warnings.push(
      'DATABASE_PASSWORD is shorter than 16 characters: anyone with a copy of the database file can try to guess it offline. Use a long random passphrase (`openssl rand -base64 32`).',
    );
  if (c.FORWARDED_ALLOW_IPS === '*' && c.ENV === 'prod')
    warnings.push('FORWARDED_ALLOW_IPS is "*": X-Forwarded-For is believed from any peer. Restrict it to your proxy.');

  return {
    ...c,
    dataDir,
    database: { kind: encrypted ? 'sqlite' : (kind as DatabaseKind), url: dbUrl, sqlitePath, encrypted },
    cors: { origins, customSchemes },
    authCookie,
    sessionCookie,
    passwordRegex,
    sources,
    warnings,
  };
}
