import { validateCsp } from '../validators.js';
import { bool, custom, int, text, type SettingDef } from '../types.js';

const AREA = 'Files and uploads';

/** Image types HridaAI can recognise by their magic bytes. SVG is never accepted (it can carry script). */
export const KNOWN_PROFILE_IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;

/** Normalises an extension list: `.pdf`, `pdf`, `PDF` and `*.pdf` all become `pdf`. */
export function parseExtensionList(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const out = new Set<string>();
  for (const part of raw.split(',')) {
    const e = part
      .trim()
      .toLowerCase()
      .replace(/^\*?\./, '');
    if (!e) continue;
    if (!/^[a-z0-9][a-z0-9._+-]{0,31}$/.test(e)) throw `"${part.trim()}" is not a file extension`;
    out.add(e);
  }
  return [...out];
}

function parseImageTypes(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [...KNOWN_PROFILE_IMAGE_TYPES];
  const out = new Set<string>();
  for (const part of raw.split(',')) {
    const t = part.trim().toLowerCase();
    if (!t) continue;
    if (t.startsWith('image/svg')) throw 'SVG is never allowed for profile images (it can carry script)';
    if (!(KNOWN_PROFILE_IMAGE_TYPES as readonly string[]).includes(t))
      throw `"${part.trim()}" is not supported; allowed: ${KNOWN_PROFILE_IMAGE_TYPES.join(', ')}`;
    out.add(t);
  }
  if (out.size === 0) throw `must list at least one of ${KNOWN_PROFILE_IMAGE_TYPES.join(', ')}`;
  return [...out];
}

/** Uploads, profile images and the iframe policy for untrusted HTML. */
export const filesSettings = {
  RAG_FILE_MAX_SIZE: int(
    null,
    { min: 1, max: 1_000_000 },
    {
      area: AREA,
      description:
        'Largest uploaded file, in MB (MiB). Enforced while the upload streams to disk: the upload is cut at the limit and refused with `file_too_large` (413). Unset (the documented default): no size limit — a warning is logged at start. Uploads never sit in memory either way.',
    },
  ),
  RAG_FILE_MAX_COUNT: int(
    null,
    { min: 1, max: 10_000 },
    {
      area: AREA,
      description:
        'Most files in one upload request (`too_many_files`, 400; nothing of that request is kept). Unset (the documented default): no count limit — a warning is logged at start.',
    },
  ),
  RAG_ALLOWED_FILE_EXTENSIONS: custom<string[]>(
    '',
    'comma list of extensions; `.pdf`, `pdf` and `PDF` are the same',
    {
      area: AREA,
      description:
        'Extensions accepted on every upload path (files, knowledge bases). Empty (default): every extension. Whatever the list says, content whose magic bytes contradict its extension (a `.png` holding HTML) is refused.',
    },
    parseExtensionList,
  ),
  RAG_EMBEDDING_MODEL: text(null, {
    area: AREA,
    allowed: 'a model id as clients see it',
    description:
      'Model used to embed knowledge passages, given as clients see it (`GET /api/models`): a model of an admin-configured OpenAI-compatible connection that offers `/v1/embeddings`. Unset (default): knowledge retrieval is full-text only. Set: a background worker embeds every passage that has no vector of this model (new documents right after they are added, documents added before the model was set or while the upstream failed, passages of another model; in batches of 64, retrying with backoff when the upstream fails; progress: `GET /api/v1/knowledge/embeddings/status`); until then a passage is found by full text only. The query is embedded at retrieval, and the 2000 most recently added passages with a vector of this model that the caller may read are ranked by cosine similarity and merged with the full-text hits (reciprocal rank fusion). Every embeddings call is recorded in the usage ledger (route `embeddings`). After changing the model behind the same id, re-index (`POST /api/v1/knowledge/embeddings/reindex`).',
  }),
  PROFILE_IMAGE_ALLOWED_MIME_TYPES: custom<string[]>(
    KNOWN_PROFILE_IMAGE_TYPES.join(','),
    `comma list of ${KNOWN_PROFILE_IMAGE_TYPES.join(', ')} (SVG is refused)`,
    {
      area: AREA,
      description:
        'Types accepted for profile images given as data URIs. The declared type must match the magic bytes; images are served with `X-Content-Type-Options: nosniff`; at most 1 MiB.',
    },
    parseImageTypes,
  ),
  ENABLE_PROFILE_IMAGE_URL_FORWARDING: bool(true, {
    area: AREA,
    description:
      "`true`: a profile image that is an external URL is answered with a 302 to it (the viewer's browser then contacts that host). `false`: the default image is served instead, so rendering an avatar never reaches a third party.",
  }),
  IFRAME_CSP: text(null, {
    area: AREA,
    allowed: 'a CSP: directives separated by `;`',
    validate: validateCsp,
    description:
      "Policy applied to untrusted HTML (artifacts, HTML previews, citations). Exposed to the UI as `iframe_csp` in `GET /api/config`; HTML file previews (`GET /api/v1/files/{id}/preview`) carry it as a `Content-Security-Policy` header together with `sandbox`, which the document cannot remove. Example: `default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; connect-src 'none'`. Unset: previews use `default-src 'none'; style-src 'unsafe-inline'; img-src data:`.",
  }),
} satisfies Record<string, SettingDef<unknown>>;
