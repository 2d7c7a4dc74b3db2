import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_foundation.js';
import * as m0002 from './0002_audit.js';
import * as m0003 from './0003_access.js';
import * as m0004 from './0004_files.js';
import * as m0005 from './0005_gateway.js';
import * as m0006 from './0006_account_security.js';
import * as m0007 from './0007_sso.js';
import * as m0008 from './0008_chats.js';
import * as m0009 from './0009_preset_knowledge.js';
import * as m0010 from './0010_prompts.js';
import * as m0011 from './0011_embedding_model.js';

/**
 * Every migration, in order. Add new files here; names sort lexically and never change once released.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_audit': m0002,
  '0003_access': m0003,
  '0004_files': m0004,
  '0005_gateway': m0005,
  '0006_account_security': m0006,
  '0007_sso': m0007,
  '0008_chats': m0008,
  '0009_preset_knowledge': m0009,
  '0010_prompts': m0010,
  '0011_embedding_model': m0011,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
