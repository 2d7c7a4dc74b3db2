import type { Config } from '../../config/index.js';
import { KNOWN_PROFILE_IMAGE_TYPES } from '../../config/settings/files.js';
import type { Db, Trx } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import { sniff } from '../files/sniff.js';
import '../files/tables.js';

/** Largest profile image accepted (decoded bytes). */
export const PROFILE_IMAGE_MAX_BYTES = 1024 * 1024;

export type ProfileImage =
  | { kind: 'none' }
  | { kind: 'data'; contentType: string; bytes: Buffer }
  | { kind: 'url'; url: string }
  | { kind: 'path'; path: string };

const SNIFFED_TYPE: Record<string, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
};

/**
 * The one validator for every way a profile image is set (the UI, SCIM, an OIDC `picture` claim):
 * - `data:` URIs: base64 only, a type listed in PROFILE_IMAGE_ALLOWED_MIME_TYPES (SVG never), the
 *   magic bytes must be that type, at most 1 MiB;
 * - `http(s)://` URLs without credentials (served as a 302 only with ENABLE_PROFILE_IMAGE_URL_FORWARDING);
 * - same-origin paths (`/static/…`);
 * - empty / null: back to the default image.
 * Anything else is refused with `invalid_image`.
 */
export function validateProfileImage(
  config: Pick<Config, 'PROFILE_IMAGE_ALLOWED_MIME_TYPES'>,
  input: string | null | undefined,
): ProfileImage {
  const v = (input ?? '').trim();
  if (v === '') return { kind: 'none' };
  if (/^data:/i.test(v)) {
    const m = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)((?:;[a-z0-9-]+=[a-z0-9.-]+)*);base64,([a-z0-9+/\s]*={0,2})$/i.exec(v);
    if (!m) throw new AppError('invalid_image', 'A profile image data URI must be base64-encoded image data');
    const type = m[1]!.toLowerCase();
    if (type.startsWith('image/svg')) throw new AppError('invalid_image', 'SVG profile images are not allowed');
    if (!config.PROFILE_IMAGE_ALLOWED_MIME_TYPES.includes(type))
      throw new AppError(
        'invalid_image',
        `Profile images must be one of ${config.PROFILE_IMAGE_ALLOWED_MIME_TYPES.join(', ')} (PROFILE_IMAGE_ALLOWED_MIME_TYPES)`,
      );
    const b64 = m[3]!.replace(/\s+/g, '');
    if (b64.length > Math.ceil((PROFILE_IMAGE_MAX_BYTES * 4) / 3) + 4)
      throw new AppError('invalid_image', `A profile image may be at most ${PROFILE_IMAGE_MAX_BYTES} bytes`);
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length === 0 || bytes.length > PROFILE_IMAGE_MAX_BYTES)
      throw new AppError('invalid_image', `A profile image may be at most ${PROFILE_IMAGE_MAX_BYTES} bytes`);
    const actual = SNIFFED_TYPE[sniff(bytes)];
    if (actual !== type || !(KNOWN_PROFILE_IMAGE_TYPES as readonly string[]).includes(actual))
      throw new AppError('invalid_image', `The image data is not ${type}`);
    return { kind: 'data', contentType: type, bytes };
  }
  if (v.startsWith('/') && !v.startsWith('//') && !v.includes('\\') && v.length <= 512 && !/[\s\0]/.test(v))
    return { kind: 'path', path: v };
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new AppError('invalid_image', 'A profile image must be an image data URI or an http(s) URL');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || v.length > 2048)
    throw new AppError(
      'invalid_image',
      'A profile image URL must be http(s), without credentials, at most 2048 characters',
    );
  return { kind: 'url', url: url.href };
}

/**
 * Validates and stores a profile image for a user (inside the caller's transaction). Data URIs go to
 * `profile_images` (decoded); URLs and paths to `users.profile_image_url`.
 */
export async function setProfileImage(
  db: Db | Trx,
  config: Pick<Config, 'PROFILE_IMAGE_ALLOWED_MIME_TYPES'>,
  userId: string,
  input: string | null | undefined,
): Promise<ProfileImage> {
  const img = validateProfileImage(config, input);
  const now = Date.now();
  await db.deleteFrom('profile_images').where('user_id', '=', userId).execute();
  if (img.kind === 'data') {
    await db
      .insertInto('profile_images')
      .values({ user_id: userId, content_type: img.contentType, data: img.bytes.toString('base64'), updated_at: now })
      .execute();
  }
  const stored = img.kind === 'url' ? img.url : img.kind === 'path' ? img.path : null;
  await db.updateTable('users').set({ profile_image_url: stored, updated_at: now }).where('id', '=', userId).execute();
  return img;
}
