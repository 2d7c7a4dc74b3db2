/**
 * Workspace prompts — what other modules use.
 *
 *   loadPrompt(db, actor, id, 'read'|'write'|'delete'|'share')  404/403 like every resource.
 *   PROMPT_TYPE ('prompt')  grants via /api/v1/access/prompt/{id}/grants.
 */
export { loadPrompt, presentPrompt, PROMPT_TYPE, type Prompt } from './service.js';
