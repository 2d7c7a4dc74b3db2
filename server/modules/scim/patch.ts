import { invalidSyntax, invalidValue, mutability, noTarget } from './errors.js';
import { matches, parsePatchPath, type FilterNode, type PatchPath } from './filter.js';
import { ENTERPRISE_USER_SCHEMA, findAttr, PATCH_SCHEMA, splitAttrPath, type AttrDef } from './schema.js';

/**
 * SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON representation, in the shapes Okta
 * and Entra ID send: `add` / `replace` / `remove` (any case), with a path (`active`,
 * `name.givenName`, `emails[type eq "work"].value`, `members[value eq "…"]`, URN-prefixed) or
 * without one (a value object whose keys are paths), string booleans ("False"), Entra's
 * `remove members` with a value list. Attributes of the enterprise extension are accepted and
 * ignored (not stored); read-only attributes in a value object (`id`, `meta`) are skipped, and a
 * path that targets one is a 400 `mutability`. Removing something that is not there is a no-op,
 * so retries are idempotent.
 */
export interface PatchOp {
  op: 'add' | 'replace' | 'remove';
  path?: string;
  value?: unknown;
}

export type Resource = Record<string, unknown>;

const MAX_OPS = 1000;

export function parsePatchBody(body: unknown): PatchOp[] {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw invalidSyntax('The body must be a PatchOp object');
  const b = body as Record<string, unknown>;
  const schemas = b.schemas;
  if (schemas !== undefined && (!Array.isArray(schemas) || !schemas.some((s) => s === PATCH_SCHEMA)))
    throw invalidSyntax(`schemas must contain ${PATCH_SCHEMA}`);
  const ops = b.Operations ?? b.operations;
  if (!Array.isArray(ops) || ops.length === 0) throw invalidSyntax('Operations must be a non-empty list');
  if (ops.length > MAX_OPS) throw invalidSyntax(`At most ${MAX_OPS} operations per request`);
  return ops.map((o, i) => {
    if (!o || typeof o !== 'object') throw invalidSyntax(`Operation ${i} is not an object`);
    const r = o as Record<string, unknown>;
    const op = typeof r.op === 'string' ? r.op.toLowerCase() : '';
    if (op !== 'add' && op !== 'replace' && op !== 'remove')
      throw invalidSyntax(`Operation ${i}: op must be add, replace or remove`);
    if (r.path !== undefined && (typeof r.path !== 'string' || r.path.trim() === ''))
      throw invalidSyntax(`Operation ${i}: path must be a non-empty string`);
    if (op === 'remove' && r.path === undefined) throw noTarget(`Operation ${i}: remove needs a path`);
    if (op !== 'remove' && r.value === undefined) throw invalidSyntax(`Operation ${i}: ${op} needs a value`);
    return { op, path: r.path as string | undefined, value: r.value };
  });
}

/** Coerces a value to an attribute's type (string booleans, single object for a list…). */
export function coerce(a: AttrDef, v: unknown, where: string): unknown {
  if (v === null) return null;
  if (a.multiValued) {
    const list = Array.isArray(v) ? v : [v];
    return list.map((x) => coerce({ ...a, multiValued: false }, x, where));
  }
  switch (a.type) {
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
      throw invalidValue(`${where} must be true or false`);
    case 'complex': {
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalidValue(`${where} must be an object`);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        const sub = a.subAttributes ? findAttr(a.subAttributes, k) : undefined;
        if (!sub) continue; // unknown sub-attributes are ignored
        out[sub.name] = coerce(sub, x, `${where}.${sub.name}`);
      }
      return out;
    }
    default:
      if (typeof v === 'string') return v;
      if (typeof v === 'number' && a.type === 'string') return String(v);
      throw invalidValue(`${where} must be a string`);
  }
}

function isReadOnly(a: AttrDef): boolean {
  return a.mutability === 'readOnly';
}

/** The item a no-match `add`/`replace` with a simple equality filter creates (Entra's emails[type eq "work"]). */
function seedFromFilter(f: FilterNode): Record<string, unknown> | null {
  if (f.kind === 'cmp' && f.op === 'eq' && !f.ref.sub && f.value !== null) return { [f.ref.attr.name]: f.value };
  if (f.kind === 'and') {
    const l = seedFromFilter(f.left);
    const r = seedFromFilter(f.right);
    return l && r ? { ...l, ...r } : null;
  }
  return null;
}

function sameItem(a: unknown, b: unknown): boolean {
  const av = a && typeof a === 'object' ? (a as Record<string, unknown>).value : a;
  const bv = b && typeof b === 'object' ? (b as Record<string, unknown>).value : b;
  return av !== undefined && bv !== undefined && String(av) === String(bv);
}

function applyWithPath(res: Resource, op: PatchOp['op'], p: PatchPath, rawValue: unknown, path: string) {
  if (p.extension) return; // enterprise extension: accepted, not stored
  const a = p.attr;
  if (isReadOnly(a) || (p.sub && isReadOnly(p.sub))) throw mutability(`${path} is read-only`);
  const key = a.name;

  if (p.filter) {
    const list = Array.isArray(res[key]) ? (res[key] as Record<string, unknown>[]) : [];
    const hit = list.filter((it) => matches(p.filter!, it));
    if (op === 'remove') {
      if (p.sub) for (const it of hit) delete it[p.sub.name];
      else res[key] = list.filter((it) => !hit.includes(it));
      return;
    }
    const value = p.sub ? coerce(p.sub, rawValue, path) : coerce({ ...a, multiValued: false }, rawValue, path);
    if (hit.length === 0) {
      const seed = seedFromFilter(p.filter);
      if (!seed) throw noTarget(`${path} matches nothing`);
      const item = p.sub ? { ...seed, [p.sub.name]: value } : { ...seed, ...(value as Record<string, unknown>) };
      res[key] = [...list, item];
      return;
    }
    for (const it of hit) {
      if (p.sub) it[p.sub.name] = value;
      else Object.assign(it, value as Record<string, unknown>);
    }
    return;
  }

  if (p.sub) {
    if (a.multiValued) {
      const list = Array.isArray(res[key]) ? (res[key] as Record<string, unknown>[]) : [];
      if (op === 'remove') {
        for (const it of list) delete it[p.sub.name];
        return;
      }
      const value = coerce(p.sub, rawValue, path);
      if (list.length === 0) res[key] = [{ [p.sub.name]: value }];
      else for (const it of list) it[p.sub.name] = value;
      return;
    }
    const obj = (res[key] && typeof res[key] === 'object' ? res[key] : {}) as Record<string, unknown>;
    if (op === 'remove') delete obj[p.sub.name];
    else obj[p.sub.name] = coerce(p.sub, rawValue, path);
    res[key] = obj;
    return;
  }

  if (op === 'remove') {
    if (a.multiValued && rawValue !== undefined && rawValue !== null) {
      // Entra ID: {"op":"Remove","path":"members","value":[{"value":"<id>"}]}
      const drop = coerce(a, rawValue, path) as unknown[];
      const list = Array.isArray(res[key]) ? (res[key] as unknown[]) : [];
      res[key] = list.filter((it) => !drop.some((d) => sameItem(it, d)));
      return;
    }
    delete res[key];
    return;
  }
  const value = coerce(a, rawValue, path);
  if (a.multiValued) {
    const items = (value ?? []) as unknown[];
    if (op === 'replace') res[key] = items;
    else {
      const list = Array.isArray(res[key]) ? [...(res[key] as unknown[])] : [];
      for (const it of items) if (!list.some((x) => sameItem(x, it))) list.push(it);
      res[key] = list;
    }
    return;
  }
  if (a.type === 'complex' && value !== null) {
    const cur = (res[key] && typeof res[key] === 'object' ? res[key] : {}) as Record<string, unknown>;
    res[key] = { ...cur, ...(value as Record<string, unknown>) };
    return;
  }
  res[key] = value;
}

/** Applies the operations to a copy of `resource` and returns it. */
export function applyPatch(resource: Resource, ops: PatchOp[], defs: readonly AttrDef[]): Resource {
  const res = structuredClone(resource);
  for (const o of ops) {
    if (o.path !== undefined) {
      applyWithPath(res, o.op, parsePatchPath(o.path.trim(), defs), o.value, o.path);
      continue;
    }
    // No path: the value object's keys are attribute paths (Okta: {"active": false}; Entra:
    // {"name.givenName": "…"}; both may carry read-only keys such as "id").
    if (!o.value || typeof o.value !== 'object' || Array.isArray(o.value))
      throw invalidValue(`${o.op} without a path needs an object value`);
    for (const [k, v] of Object.entries(o.value as Record<string, unknown>)) {
      const { urn, names } = splitAttrPath(k);
      if (k.toLowerCase() === 'schemas' || urn === ENTERPRISE_USER_SCHEMA) continue;
      if (urn && names.length === 0) {
        // {"urn:…:core:2.0:User": {…}}: the nested object's keys are paths in that schema
        if (v && typeof v === 'object' && !Array.isArray(v))
          for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) {
            const p2 = parsePatchPath(k2, defs);
            if (isReadOnly(p2.attr)) continue;
            applyWithPath(res, o.op, p2, v2, k2);
          }
        continue;
      }
      const top = findAttr(defs, names[0] ?? '');
      if (!top) continue; // unknown attributes are ignored
      if (isReadOnly(top)) continue;
      applyWithPath(res, o.op, parsePatchPath(k, defs), v, k);
    }
  }
  return res;
}
