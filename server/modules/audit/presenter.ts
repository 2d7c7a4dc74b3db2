import type { AuditEventsTable } from '../../platform/audit/tables.js';

export type AuditRow = AuditEventsTable & { actor_email: string | null };

function json(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** An audit trail entry as the admin viewer and the export show it (snapshots already masked). */
export function presentAuditEvent(r: AuditRow) {
  const seq = Number(r.seq);
  return {
    seq,
    created_at: Number(r.created_at),
    action: r.action,
    result: r.result,
    actor_id: r.actor_id,
    actor_email: r.actor_email ?? null,
    subject_id: r.subject_id,
    resource_type: r.resource_type,
    resource_id: r.resource_id,
    ip: r.ip,
    request_id: r.request_id,
    before: json(r.before),
    after: json(r.after),
    details: json(r.details),
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
}
