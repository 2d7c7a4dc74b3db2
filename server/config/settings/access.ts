import { bool, custom, type SettingDef } from '../types.js';

const AREA = 'Access control and API keys';

/**
 * Normalises one allowlist entry (API_KEYS_ALLOWED_ENDPOINTS, a key's `allowed_endpoints`): a
 * literal absolute path, compared case-insensitively, without a trailing slash. Entries with dot
 * segments, doubled slashes, backslashes, percent-escapes, query strings or wildcards are refused:
 * an entry means exactly the path it names and every path below it.
 */
export function normaliseEndpointEntry(raw: string): string {
  const v = raw.trim();
  if (!v.startsWith('/')) throw `"${v}" must be an absolute path starting with /`;
  if (v.length > 512) throw `"${v.slice(0, 40)}…" is longer than 512 characters`;
  if (!/^[A-Za-z0-9._~\-/:@]+$/.test(v))
    throw `"${v}" may contain only letters, digits, "/", ".", "_", "~", "-", ":" and "@" (no wildcards, "%", "?" or "\\")`;
  if (v.includes('//')) throw `"${v}" must not contain "//"`;
  const p = v.length > 1 ? v.replace(/\/+$/, '') : v;
  if (p.split('/').some((s) => s === '.' || s === '..')) throw `"${v}" must not contain "." or ".." segments`;
  return p.toLowerCase();
}

export function parseEndpointList(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const out: string[] = [];
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue;
    const p = normaliseEndpointEntry(part);
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

export const accessSettings = {
  BYPASS_ADMIN_ACCESS_CONTROL: bool(true, {
    area: AREA,
    description:
      'Admins may read, change, share and delete every resource (models, knowledge bases, prompts, tools…) without a grant. When `false`, admins need ownership or a grant for resources like anyone else; they keep user, group and settings management, and can still grant access to resources that have no owner (such as models from a connection).',
  }),
  USER_PERMISSIONS_WORKSPACE_MODELS_ACCESS: bool(false, {
    area: AREA,
    description:
      'Every user may create and manage their own models in the workspace. When `false`, only admins and members of a group that grants `workspace.models`. Enforced by the API.',
  }),
  USER_PERMISSIONS_WORKSPACE_KNOWLEDGE_ACCESS: bool(false, {
    area: AREA,
    description:
      'Every user may create and manage knowledge bases. When `false`, only admins and members of a group that grants `workspace.knowledge`.',
  }),
  USER_PERMISSIONS_WORKSPACE_PROMPTS_ACCESS: bool(false, {
    area: AREA,
    description:
      'Every user may create and manage prompts. When `false`, only admins and members of a group that grants `workspace.prompts`.',
  }),
  USER_PERMISSIONS_WORKSPACE_TOOLS_ACCESS: bool(false, {
    area: AREA,
    description:
      'Every user may create and manage tools and functions. When `false`, only admins and members of a group that grants `workspace.tools`.',
  }),
  USER_PERMISSIONS_WORKSPACE_TOOLS_IMPORT: bool(false, {
    area: AREA,
    description:
      'Every user may import tools (from a file or URL). When `false`, only admins and members of a group that grants `workspace.tools_import`. Importing also needs tools access.',
  }),
  USER_PERMISSIONS_WORKSPACE_SKILLS_ACCESS: bool(false, {
    area: AREA,
    description:
      'Every user may create and manage skills. When `false`, only admins and members of a group that grants `workspace.skills`.',
  }),
  USER_PERMISSIONS_FEATURES_API_KEYS: bool(false, {
    area: AREA,
    description:
      'Every user may create and use API keys. When `false` (default), only admins and members of a group that grants `features.api_keys`; a user who loses the permission cannot use the keys they made.',
  }),
  ENABLE_API_KEYS: bool(true, {
    area: AREA,
    description:
      'The API-key feature as a whole. When `false`, no key can be created or used, by anyone. When `true` (default), admins may create keys and users only with the api-keys permission (USER_PERMISSIONS_FEATURES_API_KEYS or a group) — "disabled for non-admin users" by default, as the guide says.',
  }),
  ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS: bool(false, {
    area: AREA,
    description:
      'Limit every API key to the paths in API_KEYS_ALLOWED_ENDPOINTS (default `false`: keys reach every endpoint their owner may use). Recommended for production.',
  }),
  API_KEYS_ALLOWED_ENDPOINTS: custom<string[]>(
    '',
    'comma-separated absolute paths, e.g. `/api/chat/completions,/api/v1/models`',
    {
      area: AREA,
      description:
        'With ENABLE_API_KEYS_ENDPOINT_RESTRICTIONS=true, the only paths an API key may call: a request path matches an entry when it equals it or continues it with `/` (`/api/v1/models` allows `/api/v1/models/x`, not `/api/v1/modelsx`). Compared case-insensitively after normalisation; requests with `..`, `.`, doubled slashes, backslashes or encoded slashes are refused. An empty list with restrictions on refuses every key request.',
    },
    parseEndpointList,
  ),
} satisfies Record<string, SettingDef<unknown>>;
