import { invalidValue, ScimError } from './errors.js';
import { findAttr, splitAttrPath, type AttrDef } from './schema.js';

/** Helpers shared by the Users and Groups resources: ETags, dates, projection, paging. */
export type Resource = Record<string, unknown>;

export const iso = (ms: number) => new Date(ms).toISOString();
export const etagOf = (updatedAt: number) => `W/"${updatedAt}"`;

/** If-Match (RFC 7232, weak comparison): `*` or one of the listed ETags must match. */
export function checkIfMatch(header: string | string[] | undefined, current: string): void {
  if (header === undefined) return;
  const v = Array.isArray(header) ? header.join(',') : header;
  if (v.trim() === '*') return;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  if (!v.split(',').some((t) => strip(t) === strip(current)))
    throw new ScimError(412, 'The resource changed since it was read (If-Match)');
}

function pathsOf(list: string | undefined): string[][] | null {
  if (list === undefined || list.trim() === '') return null;
  return list
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => splitAttrPath(p).names.map((n) => n.toLowerCase()))
    .filter((n) => n.length > 0);
}

/** `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5). `id` and `schemas` are always returned. */
export function project(res: Resource, attributes?: string, excluded?: string): Resource {
  const keep = pathsOf(attributes);
  const drop = pathsOf(excluded);
  let out: Resource = res;
  if (keep) {
    out = { schemas: res.schemas, id: res.id };
    for (const [k, v] of Object.entries(res)) {
      const lk = k.toLowerCase();
      const wanted = keep.filter((p) => p[0] === lk);
      if (!wanted.length) continue;
      if (wanted.some((p) => p.length === 1) || v === null || typeof v !== 'object') out[k] = v;
      else {
        const subs = wanted.map((p) => p[1]!);
        const pick = (o: Record<string, unknown>) =>
          Object.fromEntries(Object.entries(o).filter(([sk]) => subs.includes(sk.toLowerCase())));
        out[k] = Array.isArray(v)
          ? v.map((x) => pick(x as Record<string, unknown>))
          : pick(v as Record<string, unknown>);
      }
    }
  }
  if (drop) {
    out = { ...out };
    for (const p of drop) {
      const k = Object.keys(out).find((x) => x.toLowerCase() === p[0]);
      if (!k || k === 'id' || k === 'schemas') continue;
      if (p.length === 1) delete out[k];
      else {
        const v = out[k];
        const strip = (o: Record<string, unknown>) =>
          Object.fromEntries(Object.entries(o).filter(([sk]) => sk.toLowerCase() !== p[1]));
        if (Array.isArray(v)) out[k] = v.map((x) => strip(x as Record<string, unknown>));
        else if (v && typeof v === 'object') out[k] = strip(v as Record<string, unknown>);
      }
    }
  }
  return out;
}

export interface Paging {
  startIndex: number;
  count: number;
}

function intParam(v: unknown, name: string): number | null {
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string' || !/^-?\d{1,9}$/.test(v)) throw invalidValue(`${name} must be an integer`);
  return Number(v);
}

export const MAX_RESULTS = 200;

export function paging(q: Record<string, unknown>): Paging {
  const s = intParam(q.startIndex, 'startIndex');
  const c = intParam(q.count, 'count');
  return {
    startIndex: s === null || s < 1 ? 1 : s,
    count: c === null ? 100 : Math.min(Math.max(c, 0), MAX_RESULTS),
  };
}

export function listResponse(total: number, p: Paging, items: Resource[]) {
  return {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
    totalResults: total,
    startIndex: p.startIndex,
    itemsPerPage: items.length,
    Resources: items,
  };
}

/** Reads a body attribute case-insensitively (SCIM attribute names are case-insensitive). */
export function bodyAttr(body: Record<string, unknown>, name: string): unknown {
  const k = Object.keys(body).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : body[k];
}

/** A POST/PUT body normalised to canonical attribute names (unknown attributes dropped). */
export function canonicalBody(body: unknown, defs: readonly AttrDef[], schema: string): Resource {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalidValue('The body must be a JSON object');
  const b = body as Record<string, unknown>;
  const schemas = bodyAttr(b, 'schemas');
  if (schemas !== undefined && (!Array.isArray(schemas) || !schemas.includes(schema)))
    throw invalidValue(`schemas must contain ${schema}`);
  const out: Resource = {};
  for (const [k, v] of Object.entries(b)) {
    const { urn, names } = splitAttrPath(k);
    if (urn && names.length === 0) {
      // {"urn:…:core:2.0:User": {...}} — fold the core schema's attributes in; extensions ignored
      if (urn === schema && v && typeof v === 'object' && !Array.isArray(v))
        Object.assign(out, canonicalBody({ ...(v as object) }, defs, schema));
      continue;
    }
    if (urn && urn !== schema) continue;
    if (names.length !== 1) continue;
    const a = findAttr(defs, names[0]!);
    if (!a || a.mutability === 'readOnly') continue;
    out[a.name] = v;
  }
  return out;
}
