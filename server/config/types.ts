/**
 * Building blocks for the settings schema. Every setting is declared once with its documented
 * default, the values it allows and what it does; docs/configuration.md is generated from these
 * declarations and a test fails when the two disagree.
 */

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface SettingDef<T> {
  /** Documented default, as text. `null` means "unset". */
  readonly default: string | null;
  /** Human description of what is allowed. */
  readonly allowed: string;
  /** What the setting does. */
  readonly description: string;
  /** The section of docs/configuration.md the setting is listed under. */
  readonly area: string;
  /** Secret values are never printed (admin settings view, logs). */
  readonly secret?: boolean;
  /** Parses the raw value (undefined or '' when unset). Throws a message string on error. */
  readonly parse: (raw: string | undefined) => T;
}

type Meta = { description: string; area: string; secret?: boolean };

function unset(raw: string | undefined): boolean {
  return raw === undefined || raw.trim() === '';
}

export function bool(def: boolean, meta: Meta): SettingDef<boolean> {
  return {
    ...meta,
    default: String(def),
    allowed: 'true, false',
    parse(raw) {
      if (unset(raw)) return def;
      const v = raw!.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      throw `must be true or false (got "${raw}")`;
    },
  };
}

export function int(def: number | null, range: { min: number; max: number }, meta: Meta): SettingDef<number | null> {
  return {
    ...meta,
    default: def === null ? null : String(def),
    allowed: `integer ${range.min}–${range.max}`,
    parse(raw) {
      if (unset(raw)) return def;
      const v = raw!.trim();
      if (!/^-?\d+$/.test(v)) throw `must be a whole number between ${range.min} and ${range.max} (got "${raw}")`;
      const n = Number(v);
      if (n < range.min || n > range.max) throw `must be between ${range.min} and ${range.max} (got ${n})`;
      return n;
    },
  };
}

export function requiredInt(def: number, range: { min: number; max: number }, meta: Meta): SettingDef<number> {
  const inner = int(def, range, meta);
  return { ...inner, parse: (raw) => inner.parse(raw) as number };
}

export function oneOf<const T extends string>(
  values: readonly T[],
  def: T,
  meta: Meta & { caseInsensitive?: boolean; aliases?: Record<string, T> },
): SettingDef<T> {
  return {
    description: meta.description,
    area: meta.area,
    default: def,
    allowed: values.join(', '),
    parse(raw) {
      if (unset(raw)) return def;
      const v = raw!.trim();
      const key = meta.caseInsensitive === false ? v : v.toLowerCase();
      const aliased = meta.aliases?.[key];
      if (aliased) return aliased;
      const found = values.find((x) => (meta.caseInsensitive === false ? x === key : x.toLowerCase() === key));
      if (!found) throw `must be one of ${values.join(', ')} (got "${raw}")`;
      return found;
    },
  };
}

export function text(
  def: string | null,
  meta: Meta & { allowed?: string; validate?: (v: string) => string | undefined; normalise?: (v: string) => string },
): SettingDef<string | null> {
  return {
    description: meta.description,
    area: meta.area,
    secret: meta.secret,
    default: def,
    allowed: meta.allowed ?? 'any text',
    parse(raw) {
      if (unset(raw)) return def;
      const v = raw!.trim();
      if (/[\r\n\0]/.test(v)) throw 'must not contain line breaks or NUL characters';
      const problem = meta.validate?.(v);
      if (problem) throw problem;
      return meta.normalise ? meta.normalise(v) : v;
    },
  };
}

export function custom<T>(
  def: string | null,
  allowed: string,
  meta: Meta,
  parse: (raw: string | undefined) => T,
): SettingDef<T> {
  return { ...meta, default: def, allowed, parse };
}
