import type { Selectable } from 'kysely';
import type { Db, Trx } from '../../platform/db/index.js';
import { notFound } from '../../platform/http/errors.js';
import { accessibleWhere, authorize, registerResourceType, type Actor } from '../access/index.js';
import type { PromptsTable } from './tables.js';

export type Prompt = Selectable<PromptsTable>;

/** Prompts are owned; grants give read or write; creating, changing, sharing and deleting need `workspace.prompts`. */
export const PROMPT_RESOURCE = registerResourceType({
  type: 'prompt',
  table: { name: 'prompts', id: 'id', owner: 'user_id' },
  workspacePermission: 'workspace.prompts',
});
export const PROMPT_TYPE = PROMPT_RESOURCE.type;

/** The prompt, if the actor may do `action` (404 when they may not even read it). */
export async function loadPrompt(
  db: Db | Trx,
  actor: Actor,
  id: string,
  action: 'read' | 'write' | 'delete' | 'share',
): Promise<Prompt> {
  await authorize(db, actor, action, { type: PROMPT_TYPE, id }, 'Prompt');
  const p = await db
    .selectFrom('prompts as p')
    .selectAll()
    .where('p.id', '=', id)
    .where(
      accessibleWhere(actor, PROMPT_TYPE, action === 'read' ? 'read' : 'write', { id: 'p.id', owner: 'p.user_id' }),
    )
    .executeTakeFirst();
  if (!p) throw notFound('Prompt');
  return p;
}

export function presentPrompt(p: Prompt) {
  return {
    id: p.id,
    user_id: p.user_id,
    command: p.command,
    title: p.title,
    content: p.content,
    created_at: Number(p.created_at),
    updated_at: Number(p.updated_at),
  };
}
