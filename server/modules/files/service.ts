import type { Selectable } from 'kysely';
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import type { Db, Trx } from '../../platform/db/index.js';
import { AppError, notFound } from '../../platform/http/errors.js';
import { accessibleWhere, registerResourceType, type Actor } from '../access/index.js';
import { FileStore } from './storage.js';
import type { FilesTable } from './tables.js';
import './tables.js';

export type FileRow = Selectable<FilesTable>;

/** Files are owned; grants (resource type `file`) and readable knowledge bases give read access. */
export const FILE_RESOURCE = registerResourceType({
  type: 'file',
  table: { name: 'files', id: 'id', owner: 'user_id' },
});
/** Knowledge bases: creating, changing, sharing and deleting need `workspace.knowledge`. */
export const KNOWLEDGE_RESOURCE = registerResourceType({
  type: 'knowledge',
  table: { name: 'knowledge_bases', id: 'id', owner: 'user_id' },
  workspacePermission: 'workspace.knowledge',
});

const stores = new WeakMap<object, FileStore>();
/** The upload store of this app (one per DATA_DIR). */
export function fileStore(ctx: Pick<AppContext, 'config'>): FileStore {
  let s = stores.get(ctx.config);
  if (!s) {
    s = new FileStore(ctx.config.dataDir);
    stores.set(ctx.config, s);
  }
  return s;
}

/**
 * The file, if the actor may read it: owner, a read/write grant on the file, admin bypass, or
 * the file is in a knowledge base the actor may read. Otherwise 404 (existence is not revealed).
 * Decided in one SQL statement. Use it wherever a request names a file id (chats, presets, …).
 */
export async function findReadableFile(db: Db | Trx, actor: Actor, id: string): Promise<FileRow> {
  const row = await db
    .selectFrom('files')
    .selectAll()
    .where('files.id', '=', id)
    .where((eb) =>
      eb.or([
        accessibleWhere(actor, 'file', 'read', { id: 'files.id', owner: 'files.user_id' }),
        eb.exists(
          eb
            .selectFrom('knowledge_documents as kd')
            .innerJoin('knowledge_bases as kb', 'kb.id', 'kd.knowledge_id')
            .select(sql`1`.as('one'))
            .whereRef('kd.file_id', '=', 'files.id')
            .where(accessibleWhere(actor, 'knowledge', 'read', { id: 'kb.id', owner: 'kb.user_id' })),
        ),
      ]),
    )
    .executeTakeFirst();
  if (!row) throw notFound('File');
  return row;
}

/** The file, if the actor may change it or attach it elsewhere (owner, write grant, admin bypass). */
export async function findWritableFile(db: Db | Trx, actor: Actor, id: string): Promise<FileRow> {
  const row = await db
    .selectFrom('files')
    .selectAll()
    .where('files.id', '=', id)
    .where(accessibleWhere(actor, 'file', 'write', { id: 'files.id', owner: 'files.user_id' }))
    .executeTakeFirst();
  if (!row) {
    // Readable but not writable → 403; not even readable → 404.
    await findReadableFile(db, actor, id);
    throw new AppError('forbidden', 'You may not use this file here');
  }
  return row;
}

/** Reads a stored file's bytes (bounded) for extraction. */
export async function readFileBytes(ctx: Pick<AppContext, 'config'>, f: FileRow, maxBytes: number): Promise<Buffer> {
  return fileStore(ctx).readAll(f.storage_name, maxBytes);
}
