import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_foundation.js';

/**
 * Every migration, in order. Add new files here; names sort lexically and never change once released.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
