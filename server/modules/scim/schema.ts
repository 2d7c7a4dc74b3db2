/**
 * The SCIM attributes HridaAI supports, described once: the filter evaluator, PATCH paths, the
 * `attributes` projection and the /Schemas endpoint all read these definitions.
 */
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export type AttrType = 'string' | 'boolean' | 'dateTime' | 'reference' | 'complex';

export interface AttrDef {
  name: string;
  type: AttrType;
  multiValued?: boolean;
  caseExact?: boolean;
  mutability?: 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
  returned?: 'always' | 'default' | 'never' | 'request';
  uniqueness?: 'none' | 'server' | 'global';
  required?: boolean;
  description: string;
  subAttributes?: AttrDef[];
  referenceTypes?: string[];
  canonicalValues?: string[];
}

const str = (name: string, description: string, extra: Partial<AttrDef> = {}): AttrDef => ({
  name,
  type: 'string',
  description,
  ...extra,
});

export const COMMON_ATTRS: AttrDef[] = [
  str('id', 'Unique identifier assigned by HridaAI.', {
    caseExact: true,
    mutability: 'readOnly',
    returned: 'always',
    uniqueness: 'server',
  }),
  str('externalId', 'Identifier of the resource at the provisioning client.', { caseExact: true }),
  {
    name: 'meta',
    type: 'complex',
    mutability: 'readOnly',
    description: 'Resource metadata.',
    subAttributes: [
      str('resourceType', 'User or Group.', { caseExact: true, mutability: 'readOnly' }),
      { name: 'created', type: 'dateTime', mutability: 'readOnly', description: 'When the resource was created.' },
      { name: 'lastModified', type: 'dateTime', mutability: 'readOnly', description: 'When it last changed.' },
      { name: 'location', type: 'reference', mutability: 'readOnly', description: 'URI of the resource.' },
      str('version', 'Weak ETag of the resource.', { caseExact: true, mutability: 'readOnly' }),
    ],
  },
];

export const USER_ATTRS: AttrDef[] = [
  str('userName', 'Unique name the client uses for the user (case-insensitive).', {
    required: true,
    uniqueness: 'server',
  }),
  {
    name: 'name',
    type: 'complex',
    description: 'The components of the user’s name.',
    subAttributes: [str('formatted', 'Full name.'), str('givenName', 'Given name.'), str('familyName', 'Family name.')],
  },
  str('displayName', 'Name shown in HridaAI.'),
  {
    name: 'emails',
    type: 'complex',
    multiValued: true,
    description: 'E-mail addresses; the primary (or work, or first) one is the HridaAI sign-in e-mail.',
    subAttributes: [
      str('value', 'E-mail address.'),
      str('type', 'work, home or other.', { canonicalValues: ['work', 'home', 'other'] }),
      { name: 'primary', type: 'boolean', description: 'The primary address.' },
      str('display', 'Display value.'),
    ],
  },
  {
    name: 'active',
    type: 'boolean',
    description: 'false deactivates the account and revokes every session and API key at once.',
  },
  {
    name: 'groups',
    type: 'complex',
    multiValued: true,
    mutability: 'readOnly',
    description: 'Groups the user belongs to (change them through /Groups).',
    subAttributes: [
      str('value', 'Group id.', { caseExact: true, mutability: 'readOnly' }),
      { name: '$ref', type: 'reference', mutability: 'readOnly', description: 'URI of the group.' },
      str('display', 'Group name.', { mutability: 'readOnly' }),
      str('type', 'direct.', { mutability: 'readOnly' }),
    ],
  },
];

export const GROUP_ATTRS: AttrDef[] = [
  str('displayName', 'Group name (unique, case-insensitive).', { required: true, uniqueness: 'server' }),
  {
    name: 'members',
    type: 'complex',
    multiValued: true,
    description: 'Members (users only).',
    subAttributes: [
      str('value', 'User id.', { caseExact: true, mutability: 'immutable' }),
      { name: '$ref', type: 'reference', mutability: 'immutable', description: 'URI of the user.' },
      str('display', 'User name.', { mutability: 'readOnly' }),
      str('type', 'User.', { mutability: 'immutable', canonicalValues: ['User'] }),
    ],
  },
];

export type ResourceKind = 'User' | 'Group';

export function attrsOf(kind: ResourceKind): AttrDef[] {
  return [...COMMON_ATTRS, ...(kind === 'User' ? USER_ATTRS : GROUP_ATTRS)];
}

export function schemaOf(kind: ResourceKind): string {
  return kind === 'User' ? USER_SCHEMA : GROUP_SCHEMA;
}

export function findAttr(defs: readonly AttrDef[], name: string): AttrDef | undefined {
  const n = name.toLowerCase();
  return defs.find((d) => d.name.toLowerCase() === n);
}

/**
 * Splits an attribute path (`name.givenName`, `urn:…:User:userName`, `urn:…:enterprise:2.0:User:department`)
 * into its schema URN (or null) and the attribute names.
 */
export function splitAttrPath(path: string): { urn: string | null; names: string[] } {
  const lower = path.toLowerCase();
  for (const urn of [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]) {
    const u = urn.toLowerCase();
    if (lower === u) return { urn, names: [] };
    if (lower.startsWith(u + ':')) return { urn, names: path.slice(urn.length + 1).split('.') };
  }
  if (lower.startsWith('urn:')) return { urn: path, names: [] };
  return { urn: null, names: path.split('.') };
}

/** The /Schemas representation of a schema. */
export function schemaResource(id: string, name: string, description: string, attrs: AttrDef[], baseUrl: string) {
  const render = (a: AttrDef): Record<string, unknown> => ({
    name: a.name,
    type: a.type,
    multiValued: a.multiValued ?? false,
    description: a.description,
    required: a.required ?? false,
    caseExact: a.caseExact ?? false,
    mutability: a.mutability ?? 'readWrite',
    returned: a.returned ?? 'default',
    uniqueness: a.uniqueness ?? 'none',
    ...(a.canonicalValues ? { canonicalValues: a.canonicalValues } : {}),
    ...(a.type === 'reference' ? { referenceTypes: a.referenceTypes ?? ['uri'] } : {}),
    ...(a.subAttributes ? { subAttributes: a.subAttributes.map(render) } : {}),
  });
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id,
    name,
    description,
    attributes: attrs.map(render),
    meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${id}` },
  };
}
