import { invalidFilter, invalidPath } from './errors.js';
import { ENTERPRISE_USER_SCHEMA, findAttr, splitAttrPath, type AttrDef } from './schema.js';

/**
 * SCIM filters (RFC 7644 §3.4.2.2): eq, ne, co, sw, ew, pr, gt, ge, lt, le; and, or, not(…);
 * parentheses; value paths `emails[type eq "work" and value co "@example.com"]`. Operators and
 * attribute names are case-insensitive; precedence is not > and > or. A filter this parser does
 * not understand — or one on an attribute HridaAI does not support, or a comparison an attribute
 * type does not allow — is a 400 `invalidFilter`: never the unfiltered list.
 */
export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type CompValue = string | number | boolean | null;

export interface AttrRef {
  /** Resolved attribute (top-level). */
  attr: AttrDef;
  /** Resolved sub-attribute, when the path names one. */
  sub: AttrDef | null;
}

export type FilterNode =
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { kind: 'not'; expr: FilterNode }
  | { kind: 'pr'; ref: AttrRef }
  | { kind: 'cmp'; op: CompareOp; ref: AttrRef; value: CompValue }
  | { kind: 'valuePath'; attr: AttrDef; filter: FilterNode };

const OPS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
const MAX_LENGTH = 4096;
const MAX_DEPTH = 32;

type Token =
  | { t: '(' | ')' | '[' | ']'; pos: number }
  | { t: 'word'; v: string; pos: number }
  | { t: 'string'; v: string; pos: number }
  | { t: 'number'; v: number; pos: number };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === '[' || c === ']') {
      out.push({ t: c, pos: i });
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let escaped = false;
      for (; j < src.length; j++) {
        if (escaped) escaped = false;
        else if (src[j] === '\\') escaped = true;
        else if (src[j] === '"') break;
      }
      if (j >= src.length) throw invalidFilter(`Unterminated string at position ${i}`);
      let v: string;
      try {
        v = JSON.parse(src.slice(i, j + 1)) as string;
      } catch {
        throw invalidFilter(`Invalid string at position ${i}`);
      }
      out.push({ t: 'string', v, pos: i });
      i = j + 1;
      continue;
    }
    const num = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(src.slice(i));
    if (num && (c === '-' || (c >= '0' && c <= '9'))) {
      out.push({ t: 'number', v: Number(num[0]), pos: i });
      i += num[0].length;
      continue;
    }
    const word = /^[A-Za-z$][\w$:.-]*/.exec(src.slice(i));
    if (!word) throw invalidFilter(`Unexpected character "${c}" at position ${i}`);
    out.push({ t: 'word', v: word[0], pos: i });
    i += word[0].length;
  }
  return out;
}

/** Resolves an attribute path against the resource's attributes (or a complex attribute's). */
export function resolveAttr(defs: readonly AttrDef[], path: string, onError = invalidFilter): AttrRef {
  const { urn, names } = splitAttrPath(path);
  if (urn === ENTERPRISE_USER_SCHEMA || (urn && names.length === 0))
    throw onError(`Attribute ${path} is not supported`);
  if (names.length === 0 || names.length > 2 || names.some((n) => n === ''))
    throw onError(`Invalid attribute path ${path}`);
  const attr = findAttr(defs, names[0]!);
  if (!attr) throw onError(`Attribute ${names[0]} is not supported`);
  if (names.length === 1) return { attr, sub: null };
  const sub = attr.subAttributes ? findAttr(attr.subAttributes, names[1]!) : undefined;
  if (!sub) throw onError(`Attribute ${path} is not supported`);
  return { attr, sub };
}

class Parser {
  private i = 0;
  private depth = 0;
  constructor(
    private readonly toks: Token[],
    private readonly defs: readonly AttrDef[],
  ) {}

  private peek(): Token | undefined {
    return this.toks[this.i];
  }
  private next(): Token {
    const t = this.toks[this.i++];
    if (!t) throw invalidFilter('Unexpected end of filter');
    return t;
  }
  private isWord(t: Token | undefined, w: string): boolean {
    return t?.t === 'word' && t.v.toLowerCase() === w;
  }

  parse(): FilterNode {
    const n = this.or();
    const t = this.peek();
    if (t) throw invalidFilter(`Unexpected ${t.t === 'word' ? `"${t.v}"` : t.t} at position ${t.pos}`);
    return n;
  }

  private enter() {
    if (++this.depth > MAX_DEPTH) throw invalidFilter('The filter is nested too deeply');
  }

  or(): FilterNode {
    let left = this.and();
    while (this.isWord(this.peek(), 'or')) {
      this.i++;
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  and(): FilterNode {
    let left = this.unary();
    while (this.isWord(this.peek(), 'and')) {
      this.i++;
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }

  unary(): FilterNode {
    const t = this.peek();
    if (!t) throw invalidFilter('Unexpected end of filter');
    if (this.isWord(t, 'not')) {
      this.i++;
      const open = this.next();
      if (open.t !== '(') throw invalidFilter('"not" must be followed by a parenthesised filter');
      this.enter();
      const expr = this.or();
      if (this.next().t !== ')') throw invalidFilter('Missing ")"');
      this.depth--;
      return { kind: 'not', expr };
    }
    if (t.t === '(') {
      this.i++;
      this.enter();
      const expr = this.or();
      if (this.next().t !== ')') throw invalidFilter('Missing ")"');
      this.depth--;
      return expr;
    }
    if (t.t !== 'word') throw invalidFilter(`Expected an attribute at position ${t.pos}`);
    this.i++;
    const after = this.peek();
    if (after?.t === '[') {
      this.i++;
      const { attr, sub } = resolveAttr(this.defs, t.v);
      if (sub || attr.type !== 'complex' || !attr.multiValued || !attr.subAttributes)
        throw invalidFilter(`${t.v}[…] needs a multi-valued complex attribute`);
      this.enter();
      const inner = new Parser(this.toks, attr.subAttributes);
      inner.i = this.i;
      inner.depth = this.depth;
      const filter = inner.or();
      this.i = inner.i;
      if (this.next().t !== ']') throw invalidFilter('Missing "]"');
      this.depth--;
      return { kind: 'valuePath', attr, filter };
    }
    const ref = resolveAttr(this.defs, t.v);
    const opTok = this.next();
    if (opTok.t !== 'word') throw invalidFilter(`Expected an operator after ${t.v}`);
    const op = opTok.v.toLowerCase();
    const target = ref.sub ?? ref.attr;
    if (op === 'pr') return { kind: 'pr', ref };
    if (!OPS.has(op)) throw invalidFilter(`Unknown operator "${opTok.v}"`);
    const vt = this.next();
    let value: CompValue;
    if (vt.t === 'string') value = vt.v;
    else if (vt.t === 'number') value = vt.v;
    else if (vt.t === 'word' && ['true', 'false', 'null'].includes(vt.v.toLowerCase()))
      value = vt.v.toLowerCase() === 'null' ? null : vt.v.toLowerCase() === 'true';
    else throw invalidFilter(`Expected a value after ${t.v} ${op}`);
    checkComparable(target, ref, op as CompareOp, value, t.v);
    return { kind: 'cmp', op: op as CompareOp, ref, value };
  }
}

function valueAttr(ref: AttrRef): AttrDef {
  if (ref.sub) return ref.sub;
  // A multi-valued complex attribute compares its `value` sub-attribute (emails co "@x").
  if (ref.attr.type === 'complex') {
    const v = ref.attr.multiValued ? ref.attr.subAttributes?.find((s) => s.name === 'value') : undefined;
    if (!v) throw invalidFilter(`${ref.attr.name} is complex: name a sub-attribute`);
    return v;
  }
  return ref.attr;
}

function checkComparable(_target: AttrDef, ref: AttrRef, op: CompareOp, value: CompValue, path: string) {
  const a = valueAttr(ref);
  if (value === null) {
    if (op !== 'eq' && op !== 'ne') throw invalidFilter(`${path} ${op} null is not a valid comparison`);
    return;
  }
  switch (a.type) {
    case 'boolean':
      if (op !== 'eq' && op !== 'ne') throw invalidFilter(`${path} is boolean: only eq and ne apply`);
      if (typeof value !== 'boolean') throw invalidFilter(`${path} is boolean: compare with true or false`);
      return;
    case 'dateTime':
      if (['co', 'sw', 'ew'].includes(op)) throw invalidFilter(`${path} is a date: co, sw and ew do not apply`);
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
        throw invalidFilter(`${path} is a date: compare with an xsd:dateTime string`);
      return;
    default:
      if (typeof value !== 'string') throw invalidFilter(`${path} is a string: compare with a quoted string`);
  }
}

export function parseFilter(src: string, defs: readonly AttrDef[]): FilterNode {
  if (src.length > MAX_LENGTH) throw invalidFilter('The filter is too long');
  const toks = tokenize(src);
  if (toks.length === 0) throw invalidFilter('The filter is empty');
  return new Parser(toks, defs).parse();
}

// ---- evaluation over a resource's JSON representation

function prop(obj: unknown, name: string): unknown {
  if (obj === null || typeof obj !== 'object') return undefined;
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : (obj as Record<string, unknown>)[key];
}

/** Every scalar value an attribute reference designates in a resource. */
function valuesOf(resource: unknown, ref: AttrRef): unknown[] {
  const top = prop(resource, ref.attr.name);
  const items = Array.isArray(top) ? top : top === undefined || top === null ? [] : [top];
  const subName = ref.sub?.name ?? (ref.attr.type === 'complex' && ref.attr.multiValued ? 'value' : null);
  const out: unknown[] = [];
  for (const it of items) {
    const v = subName ? prop(it, subName) : it;
    if (Array.isArray(v)) out.push(...v);
    else if (v !== undefined && v !== null && v !== '') out.push(v);
  }
  return out;
}

function compareOne(a: AttrDef, op: CompareOp, have: unknown, want: CompValue): boolean {
  if (a.type === 'boolean') return op === 'eq' ? have === want : have !== want;
  if (a.type === 'dateTime') {
    const x = Date.parse(String(have));
    const y = Date.parse(String(want));
    switch (op) {
      case 'eq':
        return x === y;
      case 'ne':
        return x !== y;
      case 'gt':
        return x > y;
      case 'ge':
        return x >= y;
      case 'lt':
        return x < y;
      case 'le':
        return x <= y;
      default:
        return false;
    }
  }
  let x = String(have);
  let y = String(want);
  if (!a.caseExact) {
    x = x.toLowerCase();
    y = y.toLowerCase();
  }
  switch (op) {
    case 'eq':
      return x === y;
    case 'ne':
      return x !== y;
    case 'co':
      return x.includes(y);
    case 'sw':
      return x.startsWith(y);
    case 'ew':
      return x.endsWith(y);
    case 'gt':
      return x > y;
    case 'ge':
      return x >= y;
    case 'lt':
      return x < y;
    case 'le':
      return x <= y;
  }
}

export function matches(node: FilterNode, resource: unknown): boolean {
  switch (node.kind) {
    case 'and':
      return matches(node.left, resource) && matches(node.right, resource);
    case 'or':
      return matches(node.left, resource) || matches(node.right, resource);
    case 'not':
      return !matches(node.expr, resource);
    case 'pr':
      return valuesOf(resource, node.ref).length > 0;
    case 'valuePath': {
      const items = prop(resource, node.attr.name);
      return Array.isArray(items) && items.some((it) => matches(node.filter, it));
    }
    case 'cmp': {
      const vals = valuesOf(resource, node.ref);
      if (node.value === null) return node.op === 'eq' ? vals.length === 0 : vals.length > 0;
      const a = valueAttr(node.ref);
      if (node.op === 'ne') return !vals.some((v) => compareOne(a, 'eq', v, node.value));
      return vals.some((v) => compareOne(a, node.op, v, node.value));
    }
  }
}

/**
 * An equality every match must satisfy (`userName eq "x"`, alone or in an `and`), used to narrow
 * the SQL query before the exact evaluation. Null when the filter has no such condition.
 */
export function requiredEquality(node: FilterNode): { path: string; value: string } | null {
  if (node.kind === 'and') return requiredEquality(node.left) ?? requiredEquality(node.right);
  if (node.kind === 'cmp' && node.op === 'eq' && typeof node.value === 'string') {
    const path = node.ref.sub ? `${node.ref.attr.name}.${node.ref.sub.name}` : node.ref.attr.name;
    return { path, value: node.value };
  }
  return null;
}

// ---- PATCH paths: attrPath | attrPath[valFilter] | attrPath[valFilter].subAttr

export interface PatchPath {
  attr: AttrDef;
  sub: AttrDef | null;
  filter: FilterNode | null;
  /** The URN of an extension the path addresses (operations on it are ignored). */
  extension: string | null;
}

export function parsePatchPath(src: string, defs: readonly AttrDef[]): PatchPath {
  if (src.length > 1024) throw invalidPath('The path is too long');
  const lb = src.indexOf('[');
  if (lb === -1) {
    const { urn } = splitAttrPath(src);
    if (urn === ENTERPRISE_USER_SCHEMA) return { attr: defs[0]!, sub: null, filter: null, extension: urn };
    const ref = resolveAttr(defs, src, invalidPath);
    return { attr: ref.attr, sub: ref.sub, filter: null, extension: null };
  }
  const rb = src.lastIndexOf(']');
  if (rb < lb) throw invalidPath(`Invalid path ${src}`);
  const head = src.slice(0, lb);
  const rest = src.slice(rb + 1);
  const ref = resolveAttr(defs, head, invalidPath);
  if (ref.sub || ref.attr.type !== 'complex' || !ref.attr.multiValued || !ref.attr.subAttributes)
    throw invalidPath(`${head}[…] needs a multi-valued complex attribute`);
  let filter: FilterNode;
  try {
    filter = parseFilter(src.slice(lb + 1, rb), ref.attr.subAttributes);
  } catch (e) {
    throw invalidPath(`Invalid filter in path ${src}: ${(e as Error).message}`);
  }
  let sub: AttrDef | null = null;
  if (rest) {
    if (!rest.startsWith('.')) throw invalidPath(`Invalid path ${src}`);
    sub = findAttr(ref.attr.subAttributes, rest.slice(1)) ?? null;
    if (!sub) throw invalidPath(`Attribute ${src} is not supported`);
  }
  return { attr: ref.attr, sub, filter, extension: null };
}
