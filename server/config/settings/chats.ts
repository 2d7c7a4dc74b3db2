import { bool, int, type SettingDef } from '../types.js';

const AREA = 'Conversations and personal data';

/** Chats, share links, admin access and export, memories, retention. */
export const chatsSettings = {
  ENABLE_COMMUNITY_SHARING: bool(true, {
    area: AREA,
    description:
      'Users may create share links for their chats: an unguessable id pointing to a read-only snapshot that any **signed-in** user holding the link can view, revocable by its owner. `false`: creating links answers 403 `sharing_disabled` and existing links stop resolving (404) until it is turned back on. Consider `false` when conversations are sensitive.',
  }),
  ENABLE_ADMIN_CHAT_ACCESS: bool(true, {
    area: AREA,
    description:
      'Admins may list and read (never change) any user’s chats (`GET /api/v1/users/{id}/chats`, `GET /api/v1/chats/{id}`); every such read is written to the audit trail (`chat.admin_read`, `chat.admin_list`). `false`: admins get 404 for other users’ chats like anyone else.',
  }),
  ENABLE_ADMIN_EXPORT: bool(true, {
    area: AREA,
    description:
      'Admins may export every user’s chats as streamed JSON Lines (`GET /api/v1/chats/export`, audited). The export never contains password hashes, keys or secrets. `false`: the route answers 403 `admin_export_disabled`.',
  }),
  MEMORY_PII_REDACTION: bool(false, {
    area: AREA,
    description:
      '`true`: before a memory is stored (created or edited), card numbers that pass the Luhn check, SSN-shaped numbers (`123-45-6789`), e-mail addresses and phone numbers are replaced with `[REDACTED_CC]`, `[REDACTED_SSN]`, `[REDACTED_EMAIL]` and `[REDACTED_PHONE]`; the original text is never written. Near misses (dates, versions, IP addresses, order numbers, numbers failing Luhn) are kept. Existing memories are not rewritten when the setting changes.',
  }),
  USER_PERMISSIONS_FEATURES_MEMORIES: bool(true, {
    area: AREA,
    description:
      'Every user may keep memories (`/api/v1/memories`) and have them added to their chats when they turn that on. When `false`, only admins and members of a group that grants `features.memories`.',
  }),
  CHAT_RETENTION_DAYS: int(
    null,
    { min: 1, max: 36_500 },
    {
      area: AREA,
      description:
        'Unset (default): chats are kept until their owner deletes them. A number: chats not updated for that many days are deleted, with their messages and share links, by a background job that runs at start and every hour; with several instances only one runs it at a time (a lease row in the database). Pinned chats are never deleted by retention; archived chats are deleted like any other chat.',
    },
  ),
} satisfies Record<string, SettingDef<unknown>>;
