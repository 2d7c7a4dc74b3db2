import type { Generated } from 'kysely';
import type { Millis } from '../../platform/db/types.js';

/** An upload. The bytes live under DATA_DIR/uploads/<storage_name>; the name is random, never user input. */
export interface FilesTable {
  id: string;
  user_id: string;
  /** Sanitised display name (Content-Disposition only). */
  filename: string;
  /** Lower-case extension of the sanitised name, '' when none. */
  ext: string;
  /** Derived from the extension after the magic bytes agreed with it; never the client's claim. */
  content_type: string;
  size: number;
  sha256: string;
  storage_name: string;
  created_at: Millis;
  updated_at: Millis;
}

/** A validated profile image (data URI decoded), served with nosniff. */
export interface ProfileImagesTable {
  user_id: string;
  content_type: string;
  /** base64 */
  data: string;
  updated_at: Millis;
}

export interface KnowledgeBasesTable {
  id: string;
  user_id: string;
  name: string;
  description: string;
  created_at: Millis;
  updated_at: Millis;
}

export interface KnowledgeDocumentsTable {
  id: string;
  knowledge_id: string;
  file_id: string | null;
  source_type: 'file' | 'web';
  source_url: string | null;
  title: string;
  content_type: string;
  size: number;
  chunk_count: number;
  added_by: string | null;
  created_at: Millis;
}

export interface KnowledgeChunksTable {
  id: Generated<number>;
  document_id: string;
  knowledge_id: string;
  seq: number;
  text: string;
  embedding: string | null;
  created_at: Millis;
}

declare module '../../platform/db/types.js' {
  interface Database {
    files: FilesTable;
    profile_images: ProfileImagesTable;
    knowledge_bases: KnowledgeBasesTable;
    knowledge_documents: KnowledgeDocumentsTable;
    knowledge_chunks: KnowledgeChunksTable;
  }
}
