import type { FileRow } from './service.js';

/** The only shape in which a file leaves the server (never the storage name). */
export function presentFile(f: FileRow) {
  return {
    id: f.id,
    user_id: f.user_id,
    filename: f.filename,
    ext: f.ext,
    content_type: f.content_type,
    size: Number(f.size),
    sha256: f.sha256,
    created_at: f.created_at,
    updated_at: f.updated_at,
  };
}
